//! `segment.rules`: ordered SQL conditions, first match or every match, default segment, and
//! unknown columns caught by `segflow validate`.

use crate::support::Project;

const CUSTOMERS: &str = "\
customer_id,age,income,city_tier,industry
c1,24,30000,urban,retail
c2,45,120000,urban,finance
c3,67,50000,rural,
c4,31,95000,suburban,finance
c5,,20000,urban,retail
";

fn project(rules: &str) -> Project {
    let project = Project::new();
    project.write("data/customers.csv", CUSTOMERS);
    project.pipeline(
        "rules",
        &format!(
            r#"
name: rules
steps:
  - id: customers
    uses: gather.csv
    with: {{ path: data/customers.csv }}
  - id: seg
    uses: segment.rules
    needs: [customers]
    with:
{rules}
"#
        ),
    );
    project
}

fn segments(project: &Project, run: &str) -> Vec<(String, String)> {
    project
        .dataset(run, "seg", "main")
        .into_iter()
        .map(|row| {
            (
                row["customer_id"].as_str().unwrap().to_string(),
                row["segment"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_first_matching_rule_wins_and_the_rest_get_the_default() {
    let project = project(
        r#"      default: Everyone else
      rules:
        - { segment: Young urban, when: "age < 30 AND city_tier = 'urban'" }
        - { segment: High income, when: "income >= 90000" }
        - { segment: Finance, when: "industry = 'finance'" }"#,
    );
    let run = project.segflow(&["run", "rules"]).ok();
    let id = run.run_id();
    let found = segments(&project, &id);
    let expected = [
        ("c1", "Young urban"),
        ("c2", "High income"),
        ("c3", "Everyone else"),
        ("c4", "High income"),
        // A missing age makes the condition NULL: no match, never an error.
        ("c5", "Everyone else"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(found, expected);
    let shown = project.show(&id);
    let outputs = &shown["steps"][1]["outputs"];
    assert_eq!(outputs["unmatched"], 2, "{shown}");
    assert_eq!(outputs["segments"]["High income"], 2, "{shown}");
    assert_eq!(outputs["segments"]["Finance"], 0, "{shown}");
}

#[test]
fn mode_all_gives_every_matching_segment() {
    let project = project(
        r#"      mode: all
      rules:
        - { segment: High income, when: "income >= 90000" }
        - { segment: Finance, when: "industry = 'finance'" }"#,
    );
    let id = project.segflow(&["run", "rules"]).ok().run_id();
    let rows = project.dataset(&id, "seg", "main");
    let lists: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r["segments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(lists[1], ["High income", "Finance"]);
    assert_eq!(lists[0], ["Others"]);
    assert_eq!(rows[1]["segment"], "High income");
}

#[test]
fn validate_names_unknown_columns_with_a_suggestion() {
    let project = project(
        r#"      rules:
        - { segment: Young, when: "agee < 30" }
        - { segment: Urban, when: "city_tier = \"urban\"" }
        - { segment: Broken, when: "income >" }"#,
    );
    let run = project.segflow(&["validate"]).failed();
    assert!(
        run.stderr.contains("the input has no column `agee`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("did you mean `age`?"), "{}", run.stderr);
    assert!(
        run.stderr.contains("write text in single quotes: 'urban'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("this is not a SQL condition"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("3 errors"), "{}", run.stderr);
}

#[test]
fn a_condition_that_fails_at_run_time_names_its_rule() {
    // The file's name comes from a param, so its columns are not known before the run: the
    // run itself must say which rule is wrong.
    let project = Project::new();
    project.write("data/customers.csv", "customer_id,income\nc1,5\n");
    project.pipeline(
        "rules",
        r#"
name: rules
params:
  file: { type: string, default: customers }
steps:
  - id: customers
    uses: gather.csv
    with: { path: "data/${{ params.file }}.csv" }
  - id: seg
    uses: segment.rules
    needs: [customers]
    with:
      rules: [{ segment: Rich, when: "wealth > 10" }]
"#,
    );
    project.segflow(&["validate"]).ok();
    let run = project.segflow(&["run", "rules"]).failed();
    let shown = project.show(&run.run_id());
    let error = shown["steps"][1]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("rules[0] (`Rich`)"), "{shown}");
    assert!(error.contains("wealth"), "{shown}");
}

#[test]
fn a_type_mismatch_found_in_the_data_never_quotes_a_customer() {
    let project = Project::new();
    project.write(
        "data/customers.csv",
        "customer_id,email\nc1,ada@example.com\nc2,bob@example.com\n",
    );
    project.pipeline(
        "rules",
        r#"
name: rules
steps:
  - id: customers
    uses: gather.csv
    with: { path: data/customers.csv }
  - id: seg
    uses: segment.rules
    needs: [customers]
    with:
      rules: [{ segment: Odd, when: "email > 3" }]
"#,
    );
    let run = project.segflow(&["run", "rules"]).failed();
    let shown = project.show(&run.run_id());
    let reason = shown["steps"][1]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the rules could not be evaluated on `customers`"),
        "{reason}"
    );
    assert!(reason.contains("check each rule's `when`"), "{reason}");
    for text in [reason, run.stdout.as_str(), run.stderr.as_str()] {
        assert!(!text.contains("@example.com"), "customer data in: {text}");
    }
}
