//! Fetching the manifest a pointer record names (PROTOCOL.md 4, extension), one part at a
//! time, in order, so a bad part stops the fetch before any other part is asked for.
//!
//! A record's size, levels, part count and repeated top-level parts were checked when it was
//! decoded ([`decode_value`](super::record::decode_value)), before this runs. With two levels
//! every index part is fetched and checked (hash, a non-empty list of ids, no index part listed,
//! no part listed twice, no more parts than the size needs) before the first manifest part is
//! fetched.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;

use crate::dht::client::{DhtError, PartFetcher};
use crate::dht::record::{check_index, Joiner, PartError, PointerRecord, RecordError, PART_SIZE};
use crate::id::BlobId;

/// Fetch, check and join the manifest `pointer` names, through `fetcher`. `find_peers` looks
/// up who serves a part; the peers that served the previous part are asked first, so a
/// manifest served by one publisher costs one lookup rather than one per part.
pub async fn fetch_manifest<F, Fut>(
    pointer: &PointerRecord,
    fetcher: &dyn PartFetcher,
    find_peers: F,
) -> Result<Vec<u8>, DhtError>
where
    F: Fn(BlobId) -> Fut,
    Fut: Future<Output = Vec<SocketAddr>>,
{
    let mut source = Source {
        fetcher,
        find_peers,
        known: None,
    };
    let data: Vec<BlobId> = match pointer.levels {
        1 => pointer.parts.clone(),
        2 => {
            let expected = pointer.data_parts() as usize;
            let mut seen: HashSet<BlobId> = pointer.parts.iter().copied().collect();
            let mut ids = Vec::with_capacity(expected);
            for index in &pointer.parts {
                let bytes = source.get(*index).await?;
                ids.extend(check_index(pointer, *index, &bytes, &mut seen)?);
                if ids.len() > expected {
                    return Err(PartError::Count {
                        got: ids.len(),
                        expected,
                    }
                    .into());
                }
            }
            if ids.len() != expected {
                return Err(PartError::Count {
                    got: ids.len(),
                    expected,
                }
                .into());
            }
            ids
        }
        other => return Err(RecordError::BadLevels(other).into()),
    };
    let mut joiner = Joiner::new(pointer.size);
    for id in data {
        let bytes = source.get(id).await?;
        joiner.push(&bytes)?;
    }
    Ok(joiner.finish()?)
}

struct Source<'a, F> {
    fetcher: &'a dyn PartFetcher,
    find_peers: F,
    /// Peers that served the last part.
    known: Option<Vec<SocketAddr>>,
}

impl<F, Fut> Source<'_, F>
where
    F: Fn(BlobId) -> Fut,
    Fut: Future<Output = Vec<SocketAddr>>,
{
    /// One part, at most [`PART_SIZE`] bytes, hashing to `id`.
    async fn get(&mut self, id: BlobId) -> Result<Vec<u8>, DhtError> {
        let known = match &self.known {
            Some(peers) => self.fetcher.fetch(id, peers).await.ok(),
            None => None,
        };
        let bytes = match known {
            Some(bytes) => bytes,
            None => {
                let peers = (self.find_peers)(id).await;
                let bytes = self
                    .fetcher
                    .fetch(id, &peers)
                    .await
                    .map_err(|e| DhtError::PartUnavailable { id, reason: e.0 })?;
                self.known = Some(peers);
                bytes
            }
        };
        if bytes.len() > PART_SIZE {
            return Err(PartError::TooLarge {
                id,
                len: bytes.len(),
            }
            .into());
        }
        if !id.matches(&bytes) {
            return Err(PartError::HashMismatch { id }.into());
        }
        Ok(bytes)
    }
}
