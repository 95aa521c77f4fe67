//! Plain-language persona lines: "younger, high income, mostly urban, 2.3x average spend".
//!
//! A numeric feature is mentioned when its segment mean is at least 25% above or 20% below
//! everyone's (index ≥ 125 or ≤ 80): as its own words when the pipeline gives them (`younger`
//! / `older`), else "high x" / "low x", or "2.3x average x" when the mean is at least 1.5 times
//! (or at most half) everyone's. A categorical feature is mentioned when one value holds at
//! least half the segment and is at least 1.2 times as common as among everyone: "mostly
//! urban". The strongest differences come first; at most four are kept.

use std::collections::BTreeMap;

/// How a numeric feature of a segment compares with everyone.
pub struct NumericContrast<'a> {
    pub feature: &'a str,
    /// Segment mean / everyone's mean (1 = average); `None` when it cannot be computed.
    pub ratio: Option<f64>,
}

/// The most common value of a categorical feature in a segment.
pub struct CategoricalContrast<'a> {
    pub value: &'a str,
    /// Its share in the segment.
    pub share: f64,
    /// Its share among everyone.
    pub overall_share: f64,
}

pub const MAX_PHRASES: usize = 4;

pub fn describe(
    numeric: &[NumericContrast<'_>],
    categorical: &[CategoricalContrast<'_>],
    words: &BTreeMap<String, [String; 2]>,
) -> String {
    // (strength, phrase): strength is how far from average, on a log scale.
    let mut phrases: Vec<(f64, String)> = Vec::new();
    for contrast in numeric {
        let Some(ratio) = contrast.ratio.filter(|r| r.is_finite() && *r >= 0.0) else {
            continue;
        };
        if ratio > 0.8 && ratio < 1.25 {
            continue;
        }
        let name = contrast.feature.replace('_', " ");
        let high = ratio >= 1.25;
        let phrase = if let Some([low_word, high_word]) = words.get(contrast.feature) {
            if high {
                high_word.clone()
            } else {
                low_word.clone()
            }
        } else if ratio >= 1.5 || ratio <= 0.5 {
            format!("{}x average {name}", format_ratio(ratio))
        } else if high {
            format!("high {name}")
        } else {
            format!("low {name}")
        };
        let strength = if ratio > 0.0 { ratio.ln().abs() } else { 10.0 };
        phrases.push((strength, phrase));
    }
    for contrast in categorical {
        if contrast.share >= 0.5
            && contrast.overall_share > 0.0
            && contrast.share / contrast.overall_share >= 1.2
        {
            let strength = (contrast.share / contrast.overall_share).ln();
            phrases.push((strength, format!("mostly {}", contrast.value)));
        }
    }
    phrases.sort_by(|a, b| b.0.total_cmp(&a.0));
    let kept: Vec<String> = phrases
        .into_iter()
        .take(MAX_PHRASES)
        .map(|(_, p)| p)
        .collect();
    if kept.is_empty() {
        "close to the average customer".into()
    } else {
        kept.join(", ")
    }
}

fn format_ratio(ratio: f64) -> String {
    if ratio >= 10.0 {
        format!("{ratio:.0}")
    } else {
        format!("{ratio:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_segment_like_a_marketer_would() {
        let words = BTreeMap::from([("age".to_string(), ["younger".into(), "older".into()])]);
        let line = describe(
            &[
                NumericContrast {
                    feature: "age",
                    ratio: Some(0.75),
                },
                NumericContrast {
                    feature: "income",
                    ratio: Some(1.3),
                },
                NumericContrast {
                    feature: "spend",
                    ratio: Some(2.3),
                },
                NumericContrast {
                    feature: "tenure",
                    ratio: Some(1.05),
                },
            ],
            &[CategoricalContrast {
                value: "urban",
                share: 0.8,
                overall_share: 0.4,
            }],
            &words,
        );
        assert_eq!(
            line,
            "2.3x average spend, mostly urban, younger, high income"
        );
    }

    #[test]
    fn an_average_segment_says_so() {
        let line = describe(
            &[NumericContrast {
                feature: "spend",
                ratio: Some(1.1),
            }],
            &[CategoricalContrast {
                value: "urban",
                share: 0.45,
                overall_share: 0.4,
            }],
            &BTreeMap::new(),
        );
        assert_eq!(line, "close to the average customer");
    }

    #[test]
    fn far_below_average_is_a_ratio_and_underscores_become_spaces() {
        let line = describe(
            &[NumericContrast {
                feature: "order_count",
                ratio: Some(0.3),
            }],
            &[],
            &BTreeMap::new(),
        );
        assert_eq!(line, "0.3x average order count");
    }
}
