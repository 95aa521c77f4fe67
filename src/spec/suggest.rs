//! "Did you mean" suggestions for misspelled names.

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub fn closest<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let input_lower = input.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            let score = strsim::jaro_winkler(&input_lower, &candidate.to_lowercase());
            (candidate, score)
        })
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(candidate, _)| candidate)
}

/// "did you mean `x`?" when a candidate is close, else a list of what is allowed.
pub fn hint<'a, I>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    if let Some(best) = closest(input, candidates.clone()) {
        return Some(format!("did you mean `{best}`?"));
    }
    let mut all: Vec<String> = Vec::new();
    for candidate in candidates {
        let quoted = format!("`{candidate}`");
        if !all.contains(&quoted) {
            all.push(quoted);
        }
    }
    if all.is_empty() {
        None
    } else if all.len() <= 12 {
        Some(format!("expected one of {}", all.join(", ")))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let kinds = ["gather.csv", "gather.json", "clean"];
        assert_eq!(closest("gather.cvs", kinds), Some("gather.csv"));
        assert_eq!(closest("neds", ["needs", "uses", "with"]), Some("needs"));
        assert_eq!(closest("zzz", kinds), None);
    }
}
