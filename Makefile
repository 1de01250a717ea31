# Cashvio: `make up` runs the whole stack locally, `make test` runs every test.
.PHONY: up down logs test build

up:      ## start the stack (http://127.0.0.1:8000); returns when healthy
	@bash stack/up.sh
down:    ## stop what `make up` started
	@bash stack/down.sh
logs:    ## follow the stack's logs
	@bash stack/logs.sh
test:    ## the whole test suite against real PostgreSQL and RabbitMQ, then a stack smoke test
	@bash stack/test.sh
build:
	@cargo build --workspace --locked
