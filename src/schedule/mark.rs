//! What the scheduler remembers of each pipeline across restarts, in the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{StateStore, StoreError, StoreResult};

/// The store namespace of the marks, keyed by pipeline name.
const NAMESPACE: &str = "schedule";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleMark {
    /// The last fire time that started a run. Written and flushed before the run starts, so a
    /// crash never starts a fire time twice.
    #[serde(default)]
    pub last_fire: Option<DateTime<Utc>>,
    /// Fire times up to here were never due (the pipeline was not scheduled yet) or were passed
    /// over on purpose (`catchup: none`).
    pub settled_until: DateTime<Utc>,
}

impl ScheduleMark {
    pub fn new(settled_until: DateTime<Utc>) -> Self {
        ScheduleMark {
            last_fire: None,
            settled_until,
        }
    }

    /// Fire times up to here need nothing more.
    pub fn handled_until(&self) -> DateTime<Utc> {
        self.last_fire
            .map_or(self.settled_until, |last| last.max(self.settled_until))
    }

    pub fn load(store: &dyn StateStore, pipeline: &str) -> StoreResult<Option<ScheduleMark>> {
        let Some(bytes) = store.kv_get(NAMESPACE, pipeline)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Corrupt {
                what: format!("the schedule mark of pipeline `{pipeline}`"),
                source,
            })
    }

    /// Writes and flushes.
    pub fn save(&self, store: &dyn StateStore, pipeline: &str) -> StoreResult<()> {
        let bytes = serde_json::to_vec(self).map_err(|source| StoreError::Corrupt {
            what: format!("the schedule mark of pipeline `{pipeline}`"),
            source,
        })?;
        store.kv_put(NAMESPACE, pipeline, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[test]
    fn a_mark_survives_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let since = Utc::now();
        {
            let store = SledStore::open(dir.path()).unwrap();
            assert_eq!(ScheduleMark::load(&store, "weekly").unwrap(), None);
            let mut mark = ScheduleMark::new(since);
            mark.last_fire = Some(since + chrono::Duration::minutes(1));
            mark.save(&store, "weekly").unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let mark = ScheduleMark::load(&store, "weekly").unwrap().unwrap();
        assert_eq!(mark.settled_until, since);
        assert_eq!(mark.handled_until(), since + chrono::Duration::minutes(1));
    }
}
