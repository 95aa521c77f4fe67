//! Cutting the contact stream into batches by count and by bytes. The cut depends only on the
//! contacts and the limits, so the same input always gives the same batches.

use super::preset::Action;

/// A contact in a batch, as the sync state will remember it once the batch is acknowledged.
#[derive(Debug, Clone)]
pub struct Member {
    pub key: String,
    /// Hash of the mapped fields (empty for removals).
    pub hash: String,
    /// The platform identifiers, as a JSON object.
    pub identity: String,
}

/// A batch before it gets its body.
pub struct Cut {
    pub action: Action,
    pub index: u64,
    pub members: Vec<Member>,
    pub fragments: Vec<Vec<u8>>,
}

pub struct Batcher {
    action: Action,
    max_records: usize,
    /// Room for contacts in a body (the platform's byte limit less the envelope).
    max_bytes: Option<usize>,
    members: Vec<Member>,
    fragments: Vec<Vec<u8>>,
    bytes: usize,
    next_index: u64,
}

impl Batcher {
    pub fn new(action: Action, max_records: usize, max_bytes: Option<usize>) -> Self {
        Batcher {
            action,
            max_records: max_records.max(1),
            max_bytes,
            members: Vec::new(),
            fragments: Vec::new(),
            bytes: 0,
            next_index: 0,
        }
    }

    /// Adds a contact; returns the batch it completed, if any. A contact that would push the
    /// body over the byte limit starts the next batch.
    pub fn push(&mut self, member: Member, fragment: Vec<u8>) -> Option<Cut> {
        let mut done = None;
        let over_bytes = self
            .max_bytes
            .is_some_and(|max| !self.fragments.is_empty() && self.bytes + fragment.len() + 1 > max);
        if over_bytes {
            done = self.take();
        }
        self.bytes += fragment.len() + 1;
        self.members.push(member);
        self.fragments.push(fragment);
        if self.members.len() >= self.max_records {
            // Both cannot happen at once: a byte cut leaves one contact pending.
            return done.or_else(|| self.take());
        }
        done
    }

    pub fn finish(&mut self) -> Option<Cut> {
        self.take()
    }

    fn take(&mut self) -> Option<Cut> {
        if self.members.is_empty() {
            return None;
        }
        let cut = Cut {
            action: self.action,
            index: self.next_index,
            members: std::mem::take(&mut self.members),
            fragments: std::mem::take(&mut self.fragments),
        };
        self.bytes = 0;
        self.next_index += 1;
        Some(cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: usize) -> Member {
        Member {
            key: i.to_string(),
            hash: String::new(),
            identity: "{}".into(),
        }
    }

    #[test]
    fn cuts_by_count() {
        let mut b = Batcher::new(Action::Upsert, 3, None);
        let mut cuts = Vec::new();
        for i in 0..7 {
            cuts.extend(b.push(member(i), vec![b'x'; 10]));
        }
        cuts.extend(b.finish());
        let sizes: Vec<usize> = cuts.iter().map(|c| c.members.len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        let indexes: Vec<u64> = cuts.iter().map(|c| c.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
    }

    #[test]
    fn cuts_by_bytes_before_the_limit_is_crossed() {
        // 11 bytes per contact (10 + comma): three fit in 35, the fourth would not.
        let mut b = Batcher::new(Action::Upsert, 100, Some(35));
        let mut cuts = Vec::new();
        for i in 0..7 {
            cuts.extend(b.push(member(i), vec![b'x'; 10]));
        }
        cuts.extend(b.finish());
        let sizes: Vec<usize> = cuts.iter().map(|c| c.members.len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        for cut in &cuts {
            let body: usize = cut.fragments.iter().map(|f| f.len() + 1).sum();
            assert!(body <= 35);
        }
    }
}
