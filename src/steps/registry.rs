//! Step kinds by name. Adding a kind is one file plus one line in `Registry::builtin`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::kind::{StepKind, Typed};
use super::{clean, gather, noop, publish, segment, shell, sleep, validate};

#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<String, Arc<dyn StepKind>>,
}

impl Registry {
    /// Every built-in kind.
    pub fn builtin() -> Self {
        let mut registry = Registry::default();
        registry.add(Typed(noop::Noop));
        registry.add(Typed(sleep::Sleep));
        registry.add(Typed(shell::Shell));
        registry.add(Typed(gather::csv::GatherCsv));
        registry.add(Typed(gather::parquet::GatherParquet));
        registry.add(Typed(gather::json::GatherJson));
        registry.add(Typed(gather::sql::GatherSql));
        registry.add(Typed(gather::http::GatherHttp));
        registry.add(Typed(clean::step::Clean));
        registry.add(Typed(clean::transform_sql::TransformSql));
        registry.add(Typed(publish::webhook::PublishWebhook));
        registry.add(Typed(publish::file::PublishFile));
        registry.add(Typed(publish::notify::NotifyWebhook));
        registry.add(Typed(segment::rules::SegmentRules));
        registry.add(Typed(segment::rfm::SegmentRfm));
        registry.add(Typed(segment::kmeans::SegmentKmeans));
        registry.add(Typed(segment::profile::SegmentProfile));
        registry.add(Typed(segment::compare::SegmentCompare));
        registry.add(Typed(validate::holdout::Holdout));
        registry.add(Typed(validate::ab::Ab));
        registry
    }

    pub fn add(&mut self, kind: impl StepKind + 'static) {
        self.kinds.insert(kind.name().to_string(), Arc::new(kind));
    }

    pub fn add_arc(&mut self, kind: Arc<dyn StepKind>) {
        self.kinds.insert(kind.name().to_string(), kind);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn StepKind>> {
        self.kinds.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.kinds.keys().map(String::as_str)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &Arc<dyn StepKind>> {
        self.kinds.values()
    }
}
