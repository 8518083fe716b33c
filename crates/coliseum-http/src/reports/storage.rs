//! Where report files live, behind `object_store`: a directory on the
//! local disk by default (beside the SQLite database), or any
//! S3-compatible bucket (AWS, MinIO, Supabase Storage) by configuration.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::problem::AppError;

/// The report files of one deployment.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    store: Arc<dyn ObjectStore>,
    /// Where they are, for the log (never a credential).
    pub location: String,
}

impl ReportFiles {
    /// `location` is a directory path (or `file://` URL), or `s3://bucket[/prefix]`.
    /// An S3 store reads the standard `AWS_*` variables (`AWS_ENDPOINT` for
    /// a store other than AWS, `AWS_ALLOW_HTTP=true` for a plain-HTTP one),
    /// and `options` (`aws_endpoint=…`, …) over them.
    pub fn open(location: &str, options: &[(String, String)]) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (key, value) in options {
                let key: AmazonS3ConfigKey = key
                    .parse()
                    .map_err(|e| anyhow::anyhow!("`{key}` is not an S3 storage option: {e}"))?;
                builder = builder.with_config(key, value);
            }
            let s3 = Arc::new(builder.build()?);
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                s3
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            }
        } else {
            if !options.is_empty() {
                anyhow::bail!("storage options apply to an s3:// location only");
            }
            let directory = location.strip_prefix("file://").unwrap_or(location);
            std::fs::create_dir_all(directory)
                .map_err(|e| anyhow::anyhow!("cannot create the reports directory {directory}: {e}"))?;
            Arc::new(LocalFileSystem::new_with_prefix(directory)?)
        };
        Ok(Self {
            store,
            location: location.to_owned(),
        })
    }

    fn path(id: &str, format: &str) -> Path {
        Path::from(format!("reports/{id}.{format}"))
    }

    pub async fn put(&self, id: &str, format: &str, bytes: Bytes) -> Result<(), AppError> {
        self.store
            .put(&Self::path(id, format), PutPayload::from_bytes(bytes))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub async fn get(&self, id: &str, format: &str) -> Result<Bytes, AppError> {
        match self.store.get(&Self::path(id, format)).await {
            Ok(found) => found.bytes().await.map_err(unavailable),
            Err(object_store::Error::NotFound { .. }) => Err(AppError::Gone {
                detail: "the report's file is no longer kept".to_owned(),
            }),
            Err(other) => Err(unavailable(other)),
        }
    }

    pub async fn delete(&self, id: &str, format: &str) -> Result<(), AppError> {
        match self.store.delete(&Self::path(id, format)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(unavailable(other)),
        }
    }
}

fn unavailable(error: object_store::Error) -> AppError {
    tracing::warn!(error = %error, "report storage failed");
    AppError::Unavailable {
        detail: "the report storage is unreachable; retry shortly".to_owned(),
        retry_after_s: 5,
    }
}
