//! Shop files in S3. Small files go up in one PUT; larger ones as a multipart upload in
//! 5 MiB parts, so a request never holds a whole file in memory.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use aws_sdk_s3::Client;

use crate::config::S3Config;

/// S3's smallest part (except the last).
pub const PART_SIZE: usize = 5 * 1024 * 1024;

#[derive(Clone)]
pub struct Storage {
    client: Client,
    bucket: String,
    presign_expiry: Duration,
}

impl Storage {
    pub fn new(config: &S3Config) -> Self {
        let credentials = Credentials::new(
            config.access_key_id.expose(),
            config.secret_access_key.expose(),
            config.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "cashvio-config",
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(config.force_path_style);
        if let Some(endpoint) = &config.endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            presign_expiry: config.presign_expiry,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket when missing (local stand-in only).
    pub async fn ensure_bucket(&self) -> anyhow::Result<()> {
        if self.client.head_bucket().bucket(&self.bucket).send().await.is_ok() {
            return Ok(());
        }
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let owned = e
                    .as_service_error()
                    .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists());
                if owned {
                    Ok(())
                } else {
                    Err(anyhow::Error::new(e).context(format!("creating bucket {}", self.bucket)))
                }
            }
        }
    }

    pub async fn put(&self, key: &str, content_type: &str, body: Vec<u8>) -> anyhow::Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .with_context(|| format!("storing {key}"))?;
        Ok(())
    }

    pub async fn delete_many(&self, keys: &[String]) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()
            .context("building delete request")?;
        let delete =
            Delete::builder().set_objects(Some(objects)).quiet(true).build().context("building delete request")?;
        self.client.delete_objects().bucket(&self.bucket).delete(delete).send().await.context("deleting objects")?;
        Ok(())
    }

    /// A presigned PUT for one object of exactly `size` bytes and `content_type`.
    pub async fn presign_put(&self, key: &str, content_type: &str, size: i64) -> anyhow::Result<(String, Duration)> {
        let config = PresigningConfig::expires_in(self.presign_expiry).context("presign expiry")?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size)
            .presigned(config)
            .await
            .context("presigning")?;
        Ok((req.uri().to_owned(), self.presign_expiry))
    }

    pub fn begin(&self, key: String, content_type: String) -> Upload {
        Upload { storage: self.clone(), key, content_type, buffer: Vec::new(), multipart: None, size: 0 }
    }
}

/// One object being written: bytes are pushed as they arrive from the client.
pub struct Upload {
    storage: Storage,
    pub key: String,
    pub content_type: String,
    buffer: Vec<u8>,
    multipart: Option<(String, Vec<CompletedPart>)>,
    pub size: u64,
}

impl Upload {
    pub async fn push(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        self.size += chunk.len() as u64;
        self.buffer.extend_from_slice(chunk);
        if self.buffer.len() >= PART_SIZE {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn flush_part(&mut self) -> anyhow::Result<()> {
        let s = &self.storage;
        if self.multipart.is_none() {
            let created = s
                .client
                .create_multipart_upload()
                .bucket(&s.bucket)
                .key(&self.key)
                .content_type(&self.content_type)
                .send()
                .await
                .context("starting multipart upload")?;
            let id = created.upload_id().context("no upload id")?.to_owned();
            self.multipart = Some((id, Vec::new()));
        }
        let (id, parts) = self.multipart.as_mut().context("multipart state")?;
        let number = i32::try_from(parts.len() + 1).context("too many parts")?;
        let body = std::mem::take(&mut self.buffer);
        let part = s
            .client
            .upload_part()
            .bucket(&s.bucket)
            .key(&self.key)
            .upload_id(id.as_str())
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .context("uploading part")?;
        parts.push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_owned)).build());
        Ok(())
    }

    pub async fn finish(mut self) -> anyhow::Result<(String, u64)> {
        if self.multipart.is_none() {
            let body = std::mem::take(&mut self.buffer);
            self.storage.put(&self.key, &self.content_type, body).await?;
            return Ok((self.key, self.size));
        }
        if !self.buffer.is_empty() {
            self.flush_part().await?;
        }
        let (id, parts) = self.multipart.take().context("multipart state")?;
        let s = &self.storage;
        s.client
            .complete_multipart_upload()
            .bucket(&s.bucket)
            .key(&self.key)
            .upload_id(id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .context("completing multipart upload")?;
        Ok((self.key, self.size))
    }

    /// Drops whatever was sent of this object.
    pub async fn abort(self) {
        if let Some((id, _)) = self.multipart {
            let s = &self.storage;
            let _ = s.client.abort_multipart_upload().bucket(&s.bucket).key(&self.key).upload_id(id).send().await;
        }
    }
}
