//! Opens the report in real headless Chromium (Debian's `chromium`, installed by
//! `cargo xtask setup`): the page must load without console messages or script errors, its
//! script must run, the expected tables must be in the DOM, and a screenshot must be taken.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use edgebench_report::{Selection, write_report};

fn chromium() -> String {
    if let Ok(path) = std::env::var("EDGEBENCH_CHROMIUM") {
        return path;
    }
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.into();
        }
    }
    panic!(
        "no chromium on PATH: run `cargo xtask setup` (installs Debian's chromium) or set EDGEBENCH_CHROMIUM"
    );
}

/// Runs headless Chromium on `page`; returns (stdout, console lines from stderr).
fn headless(page: &Path, extra: &[String], profile: &Path) -> (String, Vec<String>) {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

/// Loads `index.html` beside it in a 1400 px iframe and runs `script` (its document is `d`) once
/// it has loaded, which writes what it measured into the probe page's own attributes.
const PROBE_PAGE: [&str; 2] = [
    r##"<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>body { margin: 0; } iframe { border: 0; }</style></head>
<body>
<iframe id="report" src="index.html" style="width:1400px;height:2800px"></iframe>
<script>
document.getElementById("report").addEventListener("load", function () {
  var d = this.contentDocument;
"##,
    r##"});
</script>
</body></html>
"##,
];

/// Writes a probe page running `script` (see [`PROBE_PAGE`]) beside the report in `out`, runs
/// it, and returns its DOM.
fn measure_in_iframe(out: &Path, script: &str, profile: &Path) -> String {
    let page = out.join("probe.html");
    std::fs::write(&page, format!("{}{script}{}", PROBE_PAGE[0], PROBE_PAGE[1]))
        .expect("write probe");
    let (dom, console) = headless(
        &page,
        &[
            "--dump-dom".into(),
            "--allow-file-access-from-files".into(),
            "--window-size=1400,3000".into(),
            "--virtual-time-budget=10000".into(),
        ],
        profile,
    );
    assert!(console.is_empty(), "console messages: {console:#?}");
    dom
}

/// The value of the first attribute `name` in a dumped DOM.
fn attribute<'d>(dom: &'d str, name: &str) -> Option<&'d str> {
    dom.split(&format!("{name}=\"")).nth(1)?.split('"').next()
}

/// [`attribute`] as a number; panics naming it when the probe did not write it.
fn number_attribute(dom: &str, name: &str) -> f64 {
    attribute(dom, name)
        .unwrap_or_else(|| panic!("the probe did not run ({name} missing): {dom}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number"))
}

#[test]
fn the_console_check_catches_a_script_error() {
    // The check below would be vacuous if Chromium never reported errors this way.
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<html><body><script>throw new Error('deliberate');</script></body></html>",
    )
    .expect("write");
    let (_, console) = headless(&page, &["--dump-dom".into()], &dir.path().join("profile"));
    assert!(
        console.iter().any(|l| l.contains("deliberate")),
        "{console:?}"
    );
}

#[test]
fn the_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    common::write_fixture(&db);
    common::write_quantization(&db);
    let out: PathBuf = dir.path().join("report");
    let written =
        write_report(&db, &out, &common::inputs(), &Selection::default(), "t").expect("report");
    let profile = dir.path().join("profile");

    let (dom, console) = headless(&written.index, &["--dump-dom".into()], &profile);
    assert!(console.is_empty(), "console messages: {console:#?}");
    let tables = dom.matches("<table").count();
    assert!(
        dom.contains(&format!("data-ready=\"{tables}\"")),
        "the page's script did not run to the end (tables: {tables})"
    );
    for id in [
        "overview-table",
        "small-models-table",
        "seed-tables-table",
        "fidelity-table",
        "projection-checks-table",
        "class-fits-table",
        "category-table",
        "kv-table",
        "kv-projected-table",
        "quantization-table",
        "backend-table",
        "parity-table",
        "claims-table",
        "roi-table",
        "devices-table",
        "regressions-table",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "table `{id}` missing"
        );
    }
    assert!(dom.matches("<svg").count() >= 4, "plots missing");
    assert!(
        dom.contains("id=\"kv-quality-plot\""),
        "the KV section's speed-against-KLD plot is missing"
    );
    assert!(
        !dom.contains("<script>alert(1)"),
        "escaped label became markup"
    );

    let shot = dir.path().join("report.png");
    let (_, console) = headless(
        &written.index,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,4000".into(),
            "--hide-scrollbars".into(),
        ],
        &profile,
    );
    assert!(console.is_empty(), "console messages: {console:#?}");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert!(
        png.len() > 50_000,
        "a page with tables and plots, not a blank one ({} bytes)",
        png.len()
    );
    // Keep a copy for people to look at.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::copy(&shot, keep);

    // The layout a reader sees at 1400 px: the page measures itself in an iframe (Chromium
    // reads the same-directory file with --allow-file-access-from-files) and writes what it
    // found into attributes the dumped DOM carries.
    let probe_dom = measure_in_iframe(&out, PROBE, &profile);
    let attr = |name: &str| number_attribute(&probe_dom, name);
    let (rows, tallest, line, overflow) = (
        attr("data-overview-rows"),
        attr("data-overview-tallest-row"),
        attr("data-line-height"),
        attr("data-overflow-x"),
    );
    assert!(rows >= 5.0, "overview rows: {rows}");
    assert!(line > 5.0, "line height {line}");
    assert!(
        tallest <= 3.0 * line,
        "an overview row is {tallest} px tall, more than 3 lines of {line} px: cells must read at a glance"
    );
    let widest = attribute(&probe_dom, "data-widest").unwrap_or("?");
    assert!(
        overflow <= 0.0,
        "the page is {overflow} px wider than a 1400 px window (widest table: {widest})"
    );
    // Every measured cell: value, compact spread, a provenance badge, the detail on demand.
    assert!(
        dom.contains("class=\"spread\">±") && dom.contains("<details class=\"prov\">"),
        "cells lack the compact spread or the expandable detail"
    );
    for word in ["measured", "projected", "claimed", "estimated"] {
        assert!(
            !dom.contains(&format!("{word}: {word}")),
            "the provenance word is doubled (`{word}: {word}`)"
        );
    }
}

/// Reports the overview's tallest row, a line's height and any horizontal overflow.
const PROBE: &str = r##"  var rows = d.querySelectorAll("#overview-table tbody tr");
  var tallest = 0;
  rows.forEach(function (r) { tallest = Math.max(tallest, r.getBoundingClientRect().height); });
  var probe = d.createElement("span");
  probe.textContent = "Xg";
  d.querySelector("#overview-table td").appendChild(probe);
  var line = probe.getBoundingClientRect().height;
  probe.remove();
  var overflow = d.documentElement.scrollWidth - d.documentElement.clientWidth;
  var widest = "", widestPx = 0;
  d.querySelectorAll("table").forEach(function (t) {
    var w = t.getBoundingClientRect().right;
    if (w > widestPx) { widestPx = w; widest = t.id || "(table without id)"; }
  });
  // And the element that reaches furthest right, whatever it is.
  var far = "", farPx = 0;
  d.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect().right;
    if (r > farPx) {
      farPx = r;
      far = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && e.className.baseVal === undefined ? "." + e.className : "") + " in " + ((e.closest("[id]") || {}).id || "?");
    }
  });
  document.body.setAttribute("data-widest", widest + " ends at " + Math.round(widestPx) + " px; furthest element: " + far + " at " + Math.round(farPx) + " px");
  document.body.setAttribute("data-overview-rows", String(rows.length));
  document.body.setAttribute("data-overview-tallest-row", String(tallest));
  document.body.setAttribute("data-line-height", String(line));
  document.body.setAttribute("data-overflow-x", String(overflow));
"##;

/// A simulated lab's report: the lab overview's heat map and every flagged series' own page
/// load without console messages, carry what they promise, and fit a 1400 px window.
#[test]
fn a_simulated_labs_overview_and_series_pages_render_in_headless_chromium() {
    use edgebench_store::synthetic::lab::{LabSpec, LabYear};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("lab.sqlite");
    let spec = LabSpec {
        devices: 6,
        nights: 40,
        cases: 40,
        requests_per_run: 2,
        latencies_per_request: 8,
        seed: 7,
    };
    let lab = LabYear::new(spec);
    let store = edgebench_store::Store::open(&db).expect("open");
    for night in 0..spec.nights {
        store
            .ingest_records(Path::new("simulated"), &lab.night(night))
            .expect("ingest");
    }
    drop(store);
    let out = dir.path().join("report");
    let selection = Selection {
        window_nights: Some(28),
        ..Selection::default()
    };
    let written = write_report(&db, &out, &common::inputs(), &selection, "t").expect("report");
    assert!(
        !written.series_pages.is_empty(),
        "the injected regressions have no series page"
    );
    let profile = dir.path().join("profile");
    let (dom, console) = headless(&written.index, &["--dump-dom".into()], &profile);
    assert!(console.is_empty(), "console messages: {console:#?}");
    let tables = dom.matches("<table").count();
    assert!(
        dom.contains(&format!("data-ready=\"{tables}\"")),
        "the page's script did not run to the end"
    );
    let map = dom
        .split("id=\"lab-heat-map\"")
        .nth(1)
        .and_then(|rest| rest.split("</figure>").next())
        .expect("the lab heat map is on the page");
    assert_eq!(
        map.matches("<rect").count(),
        spec.devices * spec.cases,
        "one cell per device and case"
    );
    for page in &written.series_pages {
        let name = page.strip_prefix(&out).expect("under the report").display();
        assert!(
            map.contains(&format!("href=\"{name}\"")),
            "no heat-map cell links to {name}"
        );
    }
    assert!(
        dom.contains("id=\"lab-flagged-table\""),
        "flagged list missing"
    );

    // Every series page: its plot, one table row per night, nothing on the console.
    for page in &written.series_pages {
        let (page_dom, console) = headless(page, &["--dump-dom".into()], &profile);
        assert!(console.is_empty(), "{}: {console:#?}", page.display());
        assert!(page_dom.contains("data-ready=\"1\""), "{}", page.display());
        assert!(page_dom.contains("id=\"series-plot\"") && page_dom.contains("<svg"));
        let nights = page_dom
            .split("<tbody>")
            .nth(1)
            .map_or(0, |t| t.matches("<tr").count());
        assert_eq!(nights, spec.nights, "{}: one row per night", page.display());
        assert!(
            page_dom.contains("class=\"changed\""),
            "the change point is not marked"
        );
    }

    // The overview at 1400 px: nothing wider than the window.
    let probe_dom = measure_in_iframe(&out, OVERFLOW_PROBE, &profile);
    let overflow = number_attribute(&probe_dom, "data-overflow-x");
    assert!(
        overflow <= 0.0,
        "the lab report is {overflow} px wider than 1400 px"
    );
}

/// Reports the horizontal overflow.
const OVERFLOW_PROBE: &str = r##"  document.body.setAttribute("data-overflow-x", String(d.documentElement.scrollWidth - d.documentElement.clientWidth));
"##;
