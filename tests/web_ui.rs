//! The web UI in a real headless Chromium, driven over WebDriver (chromedriver on loopback):
//! a finished run's page draws its DAG with each step's state, the Gantt chart and the report's
//! charts; the trigger button starts a new run. A screenshot is saved under target/web-ui/.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test says loudly that it
//! was skipped; with `SEGFLOW_REQUIRE_BROWSER=1` (as `.ci/run` sets) it fails instead.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::Project;
use crate::support::serve::Server;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(30);

/// The browser and its driver, or `None` (said loudly) when they are not installed.
fn browser(test: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium =
        std::env::var_os("SEGFLOW_CHROMIUM").map_or(PathBuf::from(CHROMIUM), PathBuf::from);
    let driver =
        std::env::var_os("SEGFLOW_CHROMEDRIVER").map_or(PathBuf::from(CHROMEDRIVER), PathBuf::from);
    if chromium.is_file() && driver.is_file() {
        return Some((chromium, driver));
    }
    let message = format!(
        "{test}: {} or {} is missing (apt-get install chromium chromium-driver)",
        chromium.display(),
        driver.display()
    );
    if std::env::var("SEGFLOW_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("SEGFLOW_REQUIRE_BROWSER=1 but {message}");
    }
    let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED {message}\n");
    None
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(path: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver { child, port };
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CDNOW customers up to id 01500 (their orders and their campaign outcomes), and a pipeline
/// with every kind of report chart: segment sizes, personas, migration, holdout and lift.
fn winback_project() -> Project {
    let project = Project::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let subset = |file: &str| {
        let text = std::fs::read_to_string(root.join(file)).expect("CDNOW data");
        let mut lines = text.lines();
        let mut out = format!("{}\n", lines.next().unwrap());
        for line in lines.filter(|l| l.split(',').next().is_some_and(|id| id <= "01500")) {
            out.push_str(line);
            out.push('\n');
        }
        out
    };
    project.write("data/orders.csv", &subset("cdnow_transactions.csv"));
    project.write("data/outcomes.csv", &subset("cdnow_outcomes.csv"));
    project.pipeline(
        "winback",
        r#"name: winback
description: RFM segments of 1,500 CDNOW customers, a 30% holdout and the campaign's lift.
params:
  as_of: { type: date, default: "1998-01-01" }
steps:
  - id: orders
    uses: gather.csv
    with: { path: data/orders.csv }
  - id: rfm
    uses: segment.rfm
    needs: [orders]
    with: { customer: customer_id, date: order_date, amount: amount, as_of: "${{ params.as_of }}" }
  - id: personas
    uses: segment.profile
    needs: [rfm]
    with: { segment: segment, numeric: [recency_days, frequency, monetary] }
  - id: drift
    uses: segment.compare
    needs: [rfm]
    with: { customer: customer_id, segment: segment }
  - id: split
    uses: validate.holdout
    needs: [rfm]
    with: { fraction: 0.3, salt: ui-test, stratify_by: segment }
  - id: outcomes
    uses: gather.csv
    with: { path: data/outcomes.csv }
  - id: ab
    uses: validate.ab
    needs: [split, outcomes]
    with: { assignment: split, outcomes: outcomes, metrics: [converted] }
"#,
    );
    project.pipeline(
        "broken",
        "name: broken\nsteps:\n  - id: a\n    uses: no.such.kind\n",
    );
    project
}

fn run_pipeline(server: &Server, body: &str) -> Value {
    let answer = server
        .post("/api/pipelines/winback/runs", Some(body))
        .expect(201)
        .json();
    let run = server.wait_for_run(answer["run"].as_str().unwrap(), Duration::from_secs(300));
    assert_eq!(run["state"], "succeeded", "{run}\n{}", server.stderr());
    run
}

async fn connect(chromium: &Path, driver: &Driver, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
                "--password-store=basic", "--window-size=1280,2600",
                // Every name but loopback fails to resolve: the browser talks to nothing else.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with headless Chromium")
}

/// (width, height) of the element, asserting it was drawn.
async fn drawn(client: &Client, css: &str) -> (f64, f64) {
    let element = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"));
    let (_, _, width, height) = element.rectangle().await.expect("its size");
    assert!(width > 0.0 && height > 0.0, "`{css}` is {width}x{height}");
    (width, height)
}

async fn wait_for_page(client: &Client, css: &str) {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("the page never showed `{css}`: {e}"));
}

#[test]
fn a_run_page_draws_the_dag_timings_and_report_and_triggers_a_run() {
    let Some((chromium, chromedriver)) =
        browser("a_run_page_draws_the_dag_timings_and_report_and_triggers_a_run")
    else {
        return;
    };
    let project = winback_project();
    let server = project.serve(&[], &[]);
    // Two runs half a year apart: the second one's drift step has a migration to show.
    run_pipeline(&server, r#"{"params": {"as_of": "1997-10-01"}}"#);
    let run = run_pipeline(&server, "");
    let run_id = run["id"].as_str().unwrap().to_string();
    let steps = run["steps"].as_array().unwrap().clone();

    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().expect("a browser profile folder");
    let screenshot_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-ui");
    std::fs::create_dir_all(&screenshot_dir).expect("target/web-ui");

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let client = connect(&chromium, &driver, profile.path()).await;
        client
            .goto(&server.url(&format!("/#/runs/{run_id}")))
            .await
            .expect("open the run's page");
        wait_for_page(&client, &format!("#run[data-run='{run_id}']")).await;

        // The DAG: one node per step, coloured by the step's state.
        drawn(&client, "svg#dag").await;
        let nodes = client
            .find_all(Locator::Css("svg#dag g.dag-node"))
            .await
            .expect("DAG nodes");
        assert_eq!(nodes.len(), steps.len());
        for step in &steps {
            let id = step["id"].as_str().unwrap();
            let node = client
                .find(Locator::Css(&format!(
                    "svg#dag g.dag-node[data-step='{id}']"
                )))
                .await
                .unwrap_or_else(|e| panic!("no DAG node for {id}: {e}"));
            assert_eq!(
                node.attr("data-state").await.unwrap().as_deref(),
                step["state"].as_str()
            );
            assert!(
                node.attr("class")
                    .await
                    .unwrap()
                    .unwrap()
                    .contains("state-succeeded")
            );
            let (_, _, width, height) = node.rectangle().await.unwrap();
            assert!(width > 50.0 && height > 20.0, "node {id}: {width}x{height}");
        }
        let edges = client
            .find_all(Locator::Css("svg#dag path.edge"))
            .await
            .unwrap();
        let needs: usize = steps
            .iter()
            .map(|s| s["needs"].as_array().unwrap().len())
            .sum();
        assert_eq!(edges.len(), needs);
        // A step that needs another is drawn to its right.
        let x_of = |id: &'static str| {
            let client = &client;
            async move {
                let node = client
                    .find(Locator::Css(&format!(
                        "svg#dag g.dag-node[data-step='{id}']"
                    )))
                    .await
                    .unwrap();
                node.rectangle().await.unwrap().0
            }
        };
        assert!(x_of("orders").await < x_of("rfm").await);
        assert!(x_of("split").await < x_of("ab").await);

        // Step timings, and the report's charts: sizes (bars), migration (matrix), lift (intervals).
        drawn(&client, "svg#gantt").await;
        let bars = client
            .find_all(Locator::Css("svg#gantt rect.gantt-bar"))
            .await
            .unwrap();
        assert_eq!(bars.len(), steps.len());
        drawn(
            &client,
            "#report article[data-kind='segment.rfm'] svg.chart-bar",
        )
        .await;
        drawn(
            &client,
            "#report article[data-kind='segment.compare'] svg.chart-matrix",
        )
        .await;
        drawn(
            &client,
            "#report article[data-kind='validate.ab'] svg.chart-interval",
        )
        .await;
        let cells = client
            .find_all(Locator::Css("svg.chart-matrix rect.cell"))
            .await
            .unwrap();
        assert!(cells.len() > 4, "{} migration cells", cells.len());
        let lifts = client
            .find_all(Locator::Css("svg.chart-interval circle.estimate"))
            .await
            .unwrap();
        assert!(!lifts.is_empty());
        drawn(&client, "#logs pre.logs").await;

        let png = client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(screenshot_dir.join("run-page.png"), &png).expect("save the screenshot");
        let report = client
            .find(Locator::Css("#report"))
            .await
            .expect("the report");
        let png = report
            .screenshot()
            .await
            .expect("a screenshot of the report");
        std::fs::write(screenshot_dir.join("report.png"), &png).expect("save the screenshot");
        for (kind, file) in [
            ("segment.compare", "migration.png"),
            ("validate.ab", "lift.png"),
        ] {
            let article = client
                .find(Locator::Css(&format!(
                    "#report article[data-kind='{kind}']"
                )))
                .await
                .expect("the step's report");
            let png = article
                .screenshot()
                .await
                .expect("a screenshot of the report");
            std::fs::write(screenshot_dir.join(file), &png).expect("save the screenshot");
        }

        // A dataset preview from the steps table.
        client
            .find(Locator::Css("a.dataset-link[data-dataset='personas.main']"))
            .await
            .expect("the personas dataset link")
            .click()
            .await
            .unwrap();
        drawn(&client, "#dataset-preview table.data").await;

        // Run again from the run's page: the new run's page opens, then the list shows it.
        client
            .find(Locator::Css(".run-actions button[data-action='trigger']"))
            .await
            .expect("the run-again button")
            .click()
            .await
            .unwrap();
        client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(
                "form.trigger-form button[data-action='start-run']",
            ))
            .await
            .expect("the params form")
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + WAIT;
        let new_run = loop {
            let url = client.current_url().await.unwrap();
            let fragment = url.fragment().unwrap_or_default().to_string();
            if let Some(id) = fragment
                .strip_prefix("/runs/")
                .filter(|id| *id != run_id && id.len() == 26)
            {
                break id.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no new run page opened (at {url})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        wait_for_page(&client, &format!("#run[data-run='{new_run}']")).await;
        client.goto(&server.url("/#/runs")).await.unwrap();
        wait_for_page(&client, &format!("#runs tr.run[data-run='{new_run}']")).await;
        let rows = client.find_all(Locator::Css("#runs tr.run")).await.unwrap();
        assert_eq!(rows.len(), 3);

        // The pipelines page lists the pipeline with its last run.
        client.goto(&server.url("/#/")).await.unwrap();
        wait_for_page(&client, "#pipelines tr.pipeline[data-pipeline='winback']").await;
        let error = client
            .find(Locator::Css("#pipelines tr.load-error pre"))
            .await
            .expect("the broken file's error");
        assert!(error.text().await.unwrap().contains("no.such.kind"));
        let png = client.screenshot().await.expect("a screenshot");
        std::fs::write(screenshot_dir.join("pipelines.png"), &png).expect("save the screenshot");

        client.close().await.expect("close the browser");
        server.wait_for_run(&new_run, Duration::from_secs(300));
    });
}
