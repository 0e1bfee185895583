//! `edgebench serve` and the HTTP engine, on 127.0.0.1 only: the official `openai` Python client
//! parses the server's answers; every fault the hybrid engine must survive gives a typed error
//! (connection refused, HTTP 500 and 429, a cut, stalled or malformed stream, the server killed
//! mid-run); 64 concurrent streams are all answered or refused with a status; an API key reaches
//! no stored or printed byte.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use edgebench::core::scenario::{Api, Endpoint, EndpointTarget, ServerFaults};
use edgebench::serve::launch::{LaunchSpec, Launched};
use edgebench_http::{Event, HttpError, Prompt, Remote, Request};

fn smollm2() -> PathBuf {
    crate::common::model("smollm2-135m", "Q4_1")
}

fn spec(model: PathBuf, faults: ServerFaults) -> LaunchSpec {
    LaunchSpec {
        model_file: model,
        model_id: "smollm2-135m".into(),
        chat_template: None,
        threads: 2,
        context: 512,
        slots: 2,
        queue: None,
        admission_timeout_ms: None,
        faults,
        seed: 7,
        api_key_env: None,
    }
}

/// The status code of a raw HTTP/1.1 GET of `path` on the server at `base_url` (`…/v1`), with
/// `authorization` as its header if any: no client library in between that could add or drop it.
fn try_status(base_url: &str, path: &str, authorization: Option<&str>) -> std::io::Result<u16> {
    use std::io::{Read as _, Write as _};
    let address = base_url
        .trim_start_matches("http://")
        .trim_end_matches("/v1");
    let mut stream = std::net::TcpStream::connect(address)?;
    let header = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{header}Connection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {answer:?}")))
}

fn status_of(base_url: &str, path: &str, authorization: Option<&str>) -> u16 {
    try_status(base_url, path, authorization).expect("an HTTP answer")
}

/// A server started with `--api-key-env` answers only requests that carry the key (so a case
/// against it that passes sent it), says so in `/props`, and never shows the key: not on its
/// command line, not in what it prints.
#[test]
fn a_server_with_a_key_refuses_requests_without_it_and_never_shows_it() {
    const VAR: &str = "EDGEBENCH_TEST_SERVER_KEY";
    const KEY: &str = "sk-edgebench-server-3c1d9a";
    let server = LaunchSpec {
        api_key_env: Some(VAR.into()),
        ..spec(smollm2(), ServerFaults::default())
    }
    .launch_with_env(&[(VAR, KEY)])
    .expect("edgebench serve starts");
    let bearer = format!("Bearer {KEY}");
    for path in ["/v1/models", "/props"] {
        assert_eq!(status_of(&server.base_url, path, None), 401, "{path}");
        assert_eq!(
            status_of(&server.base_url, path, Some("Bearer sk-wrong")),
            401,
            "{path}"
        );
        assert_eq!(
            status_of(&server.base_url, path, Some(&bearer)),
            200,
            "{path}"
        );
    }
    assert_eq!(status_of(&server.base_url, "/health", None), 200);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid())).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains(&format!("--api-key-env {VAR}")),
        "{cmdline}"
    );
    assert!(
        !cmdline.contains(KEY),
        "the key is on the server's command line"
    );
    assert!(
        server.log().iter().all(|l| !l.contains(KEY)),
        "the key is in the server's output"
    );
}

fn endpoint(stall_ms: u64) -> Endpoint {
    Endpoint {
        target: EndpointTarget::Launch { model: None },
        model: None,
        api_key_env: None,
        api: Api::Completion,
        stream: true,
        ignore_eos: true,
        cache_prompt: None,
        connect_timeout_ms: 2_000,
        request_timeout_ms: 30_000,
        stall_timeout_ms: stall_ms,
        device_profile: None,
        faults: ServerFaults::default(),
    }
}

fn request(api: Api, max_tokens: u32) -> Request {
    Request {
        model: "smollm2-135m".into(),
        prompt: Prompt::Text("Write a function that adds two numbers.".into()),
        api,
        max_tokens,
        stream: true,
        ignore_eos: true,
        cache_prompt: None,
        temperature: 0.0,
        seed: 1,
    }
}

/// Every event of one request: the content chunks, then the usage or the error.
fn collect(remote: &Remote, req: Request) -> (Vec<String>, Result<Option<u64>, HttpError>) {
    let mut stream = remote.start(req);
    let mut chunks = Vec::new();
    loop {
        match remote.next(&mut stream) {
            Ok(Event::Content { text, .. }) => chunks.push(text),
            Ok(Event::Finished { usage, .. }) => {
                return (chunks, Ok(usage.map(|u| u.completion_tokens)));
            }
            Err(e) => return (chunks, Err(e)),
        }
    }
}

/// Runs case `name` of the scenario `text` (added to the shipped catalog as `file`) in the
/// harness's child process, measured (not smoke, so reports show it), with `env` added.
fn run_inline_case(
    (file, text): (&str, &str),
    name: &str,
    run_id: &str,
    db: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Output, String, String) {
    let mut catalog =
        edgebench::catalog::Catalog::load(&edgebench::paths::root()).expect("catalog");
    let parsed = edgebench::core::Scenario::parse(file, text, &catalog.registry).expect("scenario");
    catalog.cases.extend(parsed.expand());
    catalog.scenario_texts.insert(file.into(), text.into());
    let request = crate::common::request_in(
        &catalog,
        name,
        run_id,
        db,
        crate::common::planned_repetitions(),
    );
    let output = std::process::Command::new(crate::common::CASE_EXE)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            let json = serde_json::to_string(&request).expect("json");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(json.as_bytes())?;
            child.wait_with_output()
        })
        .expect("the case runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    (output, stdout, stderr)
}

/// An HTTP case against a server at a URL (here edgebench serve on loopback, standing in for a
/// phone's llama-server) runs on that remote device: its row comes from what the server says
/// and the declared profile, and the report names it.
#[test]
fn a_server_at_a_url_is_the_runs_device() {
    let model = smollm2();
    let server = launch(model, ServerFaults::default());
    let scenario = http_scenario(
        "http_phone",
        &format!(
            "url = \"{}\"\ndevice_profile = \"galaxy-s24\"\n",
            server.base_url
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let name = "http_phone::smollm2-135m::Q4_1::http::c1";
    let (output, _, stderr) =
        run_inline_case(("http_phone.toml", &scenario), name, "phone-run", &db, &[]);
    assert!(output.status.success(), "{stderr}");
    let conn = rusqlite::Connection::open(&db).expect("open");
    let (hostname, ram, os): (String, i64, String) = conn
        .query_row(
            "SELECT d.hostname, d.ram_bytes, d.os FROM runs r JOIN devices d ON d.id = r.device_id WHERE r.id = 'phone-run'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the run's device");
    assert!(
        hostname.starts_with("galaxy-s24 via edgebench serve at http://127.0.0.1:"),
        "{hostname}"
    );
    assert_eq!((ram, os.as_str()), (8 << 30, "remote"));
    let written = report(&db, &dir.path().join("report"));
    let index = std::fs::read_to_string(&written.index).expect("index");
    // (The page escapes the URL's slashes.)
    assert!(
        index.contains("galaxy-s24 via edgebench serve at http:"),
        "the report names the remote device"
    );
}

/// A one-case HTTP scenario named `name` (SmolLM2, 2 prompts, 8 tokens) with `endpoint` as
/// its `[endpoint]` table's body.
fn http_scenario(name: &str, endpoint: &str) -> String {
    format!(
        r#"format = 1
name = "{name}"
category = "code_generation"
dataset = "datasets/code_generation.jsonl"
prompts = 2
models = ["smollm2-135m"]
quantizations = ["Q4_1"]
backends = ["http"]
context = 256
prompt_tokens = 64
generate_tokens = 8
concurrency = [1]
threads = [2]
seed = 1
repetitions = 1

[endpoint]
{endpoint}"#
    )
}

/// The report of `db` written into `out` with the shipped inputs.
fn report(db: &std::path::Path, out: &std::path::Path) -> edgebench_report::Written {
    std::fs::create_dir_all(out).expect("report dir");
    let root = edgebench::paths::root();
    let read = |rel: &str| {
        (
            rel.to_owned(),
            std::fs::read_to_string(root.join(rel)).expect(rel),
        )
    };
    let (r, c, o) = (
        read("models.toml"),
        read("datasets/claims.toml"),
        read("datasets/roi.toml"),
    );
    let inputs =
        edgebench_report::Inputs::parse((&r.0, &r.1), (&c.0, &c.1), (&o.0, &o.1)).expect("inputs");
    edgebench_report::write_report(
        db,
        out,
        &inputs,
        &edgebench_report::Selection::default(),
        "now",
    )
    .expect("report")
}

fn launch(model: PathBuf, faults: ServerFaults) -> Launched {
    spec(model, faults)
        .launch()
        .expect("edgebench serve starts")
}

#[test]
fn streams_and_whole_answers_carry_usage_and_the_models_list_names_the_model() {
    let model = smollm2();
    let server = launch(model, ServerFaults::default());
    let remote = Remote::new(&server.base_url, &endpoint(10_000)).expect("client");
    for api in [Api::Completion, Api::Chat] {
        let (chunks, usage) = collect(&remote, request(api, 12));
        assert_eq!(usage.expect("complete"), Some(12), "{api:?}");
        assert_eq!(chunks.len(), 12, "{api:?}: one chunk per token");
        let whole = collect(
            &remote,
            Request {
                stream: false,
                ..request(api, 12)
            },
        );
        assert_eq!(whole.1.expect("complete"), Some(12));
        // Greedy and seeded: the whole answer is the stream's text.
        assert_eq!(whole.0.concat(), chunks.concat(), "{api:?}");
    }
    let facts: serde_json::Value = serde_json::from_str(&remote.server_facts()).expect("json");
    assert_eq!(
        facts.pointer("/models/data/0/id").and_then(|v| v.as_str()),
        Some("smollm2-135m")
    );
    assert_eq!(
        facts.pointer("/props/engine").and_then(|v| v.as_str()),
        Some("llama_cpp")
    );
}

#[test]
fn every_fault_is_a_typed_error_and_the_client_survives_it() {
    let model = smollm2();
    // Connection refused: a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let nobody =
        Remote::new(&format!("http://127.0.0.1:{port}/v1"), &endpoint(2_000)).expect("client");
    let (_, r) = collect(&nobody, request(Api::Completion, 4));
    assert!(matches!(r, Err(HttpError::Connect { .. })), "{r:?}");

    let all = |f: fn(&mut ServerFaults)| {
        let mut faults = ServerFaults {
            after_tokens: 3,
            ..ServerFaults::default()
        };
        f(&mut faults);
        faults
    };
    let cases: [(ServerFaults, &str); 5] = [
        (all(|f| f.error_rate = 1.0), "http_5xx"),
        (all(|f| f.overload_rate = 1.0), "http_429"),
        (all(|f| f.cut_rate = 1.0), "cut"),
        (all(|f| f.stall_rate = 1.0), "stalled"),
        (all(|f| f.malformed_rate = 1.0), "malformed"),
    ];
    for (faults, kind) in cases {
        let server = launch(model.clone(), faults);
        // Only the stalled stream should hit the stall limit, even on a busy machine.
        let stall_ms = if kind == "stalled" { 3_000 } else { 30_000 };
        let remote = Remote::new(&server.base_url, &endpoint(stall_ms)).expect("client");
        for api in [Api::Completion, Api::Chat] {
            let (chunks, r) = collect(&remote, request(api, 8));
            let e = r.expect_err(kind);
            assert_eq!(e.kind(), kind, "{e}");
            if kind != "http_5xx" && kind != "http_429" {
                assert_eq!(
                    chunks.len(),
                    3,
                    "{kind}: the tokens before the fault arrived"
                );
            }
            if let HttpError::Status {
                status: 429,
                retry_after,
                ..
            } = &e
            {
                assert_eq!(retry_after.as_deref(), Some("1"));
            }
        }
    }

    // Killed mid-run: two answers, then the third request finds the process gone, and the
    // fourth finds nobody listening.
    let mut server = launch(
        model,
        ServerFaults {
            kill_at_request: Some(3),
            ..ServerFaults::default()
        },
    );
    let remote = Remote::new(&server.base_url, &endpoint(2_000)).expect("client");
    for _ in 0..2 {
        assert_eq!(
            collect(&remote, request(Api::Completion, 4))
                .1
                .expect("served"),
            Some(4)
        );
    }
    let (_, third) = collect(&remote, request(Api::Completion, 4));
    assert!(
        matches!(
            third,
            Err(HttpError::Transport { .. } | HttpError::Cut { .. })
        ),
        "{third:?}"
    );
    // An aborting process holds its listening socket until the kernel has reaped it (a core
    // dump can take a while on a busy machine): a connection in between is reset, not refused.
    let gone = (0..1500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        server.exit_status().is_some()
    });
    assert!(gone, "the server aborted at its third request");
    let (_, fourth) = collect(&remote, request(Api::Completion, 4));
    assert!(
        matches!(fourth, Err(HttpError::Connect { .. })),
        "{fourth:?}"
    );
}

#[test]
fn sixty_four_concurrent_streams_are_each_answered_or_refused_with_a_status() {
    let model = smollm2();
    // Every request waits 1.5 s before it reaches the scheduler, so the 64 arrive there as
    // one burst (their connections spread over far less, even on a busy machine), whatever the
    // machine's speed: 4 slots + 24 queued hold 28, the rest must be refused.
    let mut s = spec(
        model,
        ServerFaults {
            latency_ms: 1_500,
            ..ServerFaults::default()
        },
    );
    (s.slots, s.queue, s.admission_timeout_ms) = (4, Some(24), Some(3_000));
    let server = s.launch().expect("server");
    let base = server.base_url.clone();
    let start = Instant::now();
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let base = base.clone();
            std::thread::spawn(move || {
                // A stall limit no busy machine reaches: a refusal or a token comes within
                // the 3 s admission timeout of the scheduler seeing the request.
                let remote = Remote::new(&base, &endpoint(60_000)).expect("client");
                let sent = Instant::now();
                let mut stream = remote.start(request(Api::Completion, 16));
                let mut ttft = None;
                loop {
                    match remote.next(&mut stream) {
                        Ok(Event::Content { at, .. }) => {
                            ttft.get_or_insert(at.duration_since(sent));
                        }
                        Ok(Event::Finished { usage, .. }) => return Ok((ttft, usage)),
                        Err(e) => return Err(e),
                    }
                }
            })
        })
        .collect();
    let results: Vec<_> = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect();
    let wall = start.elapsed();
    let completed: Vec<Duration> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|(ttft, usage)| {
            assert_eq!(usage.map(|u| u.completion_tokens), Some(16));
            ttft.expect("a first token")
        })
        .collect();
    let refused = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(HttpError::Status {
                    status: 429 | 503,
                    retry_after: Some(_),
                    ..
                })
            )
        })
        .count();
    // Nothing lost: every client got its answer or a refusal with Retry-After.
    assert_eq!(
        completed.len() + refused,
        64,
        "{:?}",
        results.iter().filter(|r| r.is_err()).collect::<Vec<_>>()
    );
    assert!(!completed.is_empty());
    // 4 slots + 24 queued is the most that can be held at once: the rest were turned away, and
    // the queue-full refusal (429) did run.
    assert!(
        refused >= 64 - 28 - completed.len().saturating_sub(28),
        "{refused}"
    );
    let queue_full = results
        .iter()
        .filter(|r| matches!(r, Err(HttpError::Status { status: 429, .. })))
        .count();
    assert!(
        queue_full > 0,
        "a burst of 64 against 28 places must meet a full queue: no 429 among {refused} refusals, {} completed",
        completed.len()
    );
    let mut ttft: Vec<f64> = completed.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ttft.sort_by(f64::total_cmp);
    let p99 = ttft[((ttft.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)];
    println!(
        "64 streaming clients: {} completed, {refused} refused, {:.1} completions/s, {:.0} tokens/s, TTFT p50 {:.0} ms p99 {p99:.0} ms",
        completed.len(),
        completed.len() as f64 / wall.as_secs_f64(),
        (completed.len() * 16) as f64 / wall.as_secs_f64(),
        ttft[ttft.len() / 2],
    );
}

/// The official `openai` Python client (PyPI, in `target/openai-venv`, installed by
/// `cargo xtask test`) drives the server: completions and chat, streamed and not.
#[test]
fn the_official_openai_client_parses_every_answer() {
    let model = smollm2();
    let python = edgebench::paths::root().join("target/openai-venv/bin/python");
    if !python.is_file() {
        assert!(
            std::env::var("EDGEBENCH_REQUIRE_MODELS").is_err(),
            "{} is missing: `cargo xtask test` installs it",
            python.display()
        );
        eprintln!("skipping: no openai client at {}", python.display());
        return;
    }
    let server = launch(model, ServerFaults::default());
    let script = r#"
import json, sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="not-checked", max_retries=0)
eos = {"ignore_eos": True}
out = {"models": [m.id for m in c.models.list()]}
r = c.completions.create(model="smollm2-135m", prompt="def add(a, b):", max_tokens=8, extra_body=eos)
out["completion"] = {"text": r.choices[0].text, "tokens": r.usage.completion_tokens, "finish": r.choices[0].finish_reason}
text, usage = [], None
for ch in c.completions.create(model="smollm2-135m", prompt="def add(a, b):", max_tokens=8, stream=True,
                               stream_options={"include_usage": True}, extra_body=eos):
    if ch.choices and ch.choices[0].finish_reason is None: text.append(ch.choices[0].text)
    if ch.usage: usage = ch.usage.completion_tokens
out["completion_stream"] = {"text": "".join(text), "tokens": usage, "chunks": len(text)}
msgs = [{"role": "user", "content": "Write a haiku about memory bandwidth."}]
r = c.chat.completions.create(model="smollm2-135m", messages=msgs, max_tokens=8, extra_body=eos)
out["chat"] = {"text": r.choices[0].message.content, "role": r.choices[0].message.role, "tokens": r.usage.completion_tokens}
text, usage = [], None
for ch in c.chat.completions.create(model="smollm2-135m", messages=msgs, max_tokens=8, stream=True,
                                    stream_options={"include_usage": True}, extra_body=eos):
    if ch.choices and ch.choices[0].delta.content is not None: text.append(ch.choices[0].delta.content)
    if ch.usage: usage = ch.usage.completion_tokens
out["chat_stream"] = {"text": "".join(text), "tokens": usage}
print(json.dumps(out))
"#;
    let output = std::process::Command::new(&python)
        .args(["-c", script, &server.base_url])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(v["models"], serde_json::json!(["smollm2-135m"]));
    for kind in ["completion", "completion_stream", "chat", "chat_stream"] {
        assert_eq!(v[kind]["tokens"], 8, "{kind}: {v}");
        assert!(
            !v[kind]["text"].as_str().unwrap_or_default().is_empty(),
            "{kind}: {v}"
        );
    }
    assert_eq!(v["completion"]["finish"], "length");
    assert_eq!(v["chat"]["role"], "assistant");
    assert_eq!(v["completion_stream"]["chunks"], 8);
    // Greedy: streaming changes the transport, not the answer.
    assert_eq!(
        v["completion"]["text"], v["completion_stream"]["text"],
        "{v}"
    );
    assert_eq!(v["chat"]["text"], v["chat_stream"]["text"], "{v}");
}

/// An HTTP case run through the harness's child process with an API key in the environment:
/// the key is sent (the launched server requires it, so the case could not pass without), and
/// found nowhere: not in the database or its WAL, the child's stdout or stderr, nor any file of
/// the report rendered from that database.
#[test]
fn the_api_key_is_never_stored_printed_or_reported() {
    smollm2();
    const KEY: &str = "sk-edgebench-test-9f2c1e7d5b3a";
    let scenario = &http_scenario(
        "http_key",
        "launch = true\napi_key_env = \"EDGEBENCH_TEST_API_KEY\"\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let name = "http_key::smollm2-135m::Q4_1::http::c1";
    let (output, stdout, stderr) = run_inline_case(
        ("http_key.toml", scenario),
        name,
        "key-run",
        &db,
        &[("EDGEBENCH_TEST_API_KEY", KEY)],
    );
    assert!(output.status.success(), "{stderr}");
    let html = dir.path().join("report");
    let written = report(&db, &html);
    assert!(
        std::fs::read_to_string(&written.index)
            .expect("index")
            .contains("http_key"),
        "the report shows the HTTP run"
    );
    let mut haystacks = vec![("stdout".to_owned(), stdout), ("stderr".to_owned(), stderr)];
    // The database with its write-ahead log and shared memory (a key written and not yet
    // checkpointed lives there), and every file of the report, at any depth.
    let mut files: Vec<std::path::PathBuf> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| std::path::PathBuf::from(format!("{}{suffix}", db.display())))
        .collect();
    let mut dirs = vec![html.clone()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("report dir").flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    assert!(
        files.len() > 5,
        "the database and the report's files: {files:?}"
    );
    for file in files {
        haystacks.push((
            file.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned(),
        ));
    }
    for (what, text) in &haystacks {
        assert!(!text.contains(KEY), "the key is in the {what}");
    }
    // The run happened over HTTP, with its endpoint stored (without credentials).
    let conn = rusqlite::Connection::open(&db).expect("open");
    let endpoint: String = conn
        .query_row("SELECT endpoint FROM runs WHERE id = 'key-run'", [], |r| {
            r.get(0)
        })
        .expect("the endpoint");
    assert!(
        endpoint.contains("\"url\":\"http://127.0.0.1:"),
        "{endpoint}"
    );
}

/// `scenarios/hybrid.toml` end to end, measured: SmolLM2 answers on the device; Gemma does not
/// fit the budget, so the memory guard sends every request to the faulty loopback "cloud". No
/// request is lost: each is stored with its source, and every unanswered one with the cloud's
/// error. The report shows both runs beside the seed's claims.
#[test]
fn the_hybrid_scenario_records_every_request_and_the_report_shows_it() {
    smollm2();
    crate::common::model("gemma3-270m", "Q4_K_M");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let measure = crate::common::planned_repetitions();
    let cases = [
        ("hybrid::smollm2-135m::Q4_1::hybrid::c1", "hybrid-device"),
        ("hybrid::smollm2-135m::Q4_1::hybrid::c4", "hybrid-queued"),
        ("hybrid::gemma3-270m::Q4_K_M::hybrid::c1", "hybrid-cloud"),
    ];
    for (case, run_id) in cases {
        let request = crate::common::case_request(case, run_id, &db, measure);
        edgebench::isolate::run_in_child(&crate::common::child_case(&request, &[]))
            .expect("the case passes");
    }
    let conn = rusqlite::Connection::open(&db).expect("open");
    let rows = |run: &str| -> Vec<(String, Option<String>, Option<String>, f64)> {
        let mut st = conn
            .prepare("SELECT source, fallback_reason, error, cost_usd FROM requests WHERE run_id = ?1 ORDER BY request_index")
            .expect("query");
        st.query_map([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    // 8 prompts × 2 repetitions each, nothing lost.
    let device = rows("hybrid-device");
    assert_eq!(device.len(), 16);
    assert!(device.iter().all(|(s, ..)| s == "on_device"), "{device:?}");
    assert!(device.iter().all(|(_, _, _, cost)| *cost == 0.0));
    // Four clients on one device slot: a request is answered on the device, or it waited past
    // the admission timeout (or its first token past the budget) and went to the cloud.
    let queued = rows("hybrid-queued");
    assert_eq!(queued.len(), 16);
    for (source, reason, ..) in &queued {
        let why = reason.as_deref().unwrap_or_default();
        match source.as_str() {
            "on_device" => assert!(reason.is_none(), "{why}"),
            _ => assert!(
                why.starts_with("admission: ") || why.starts_with("TTFT over budget"),
                "{why}"
            ),
        }
    }
    let cloud = rows("hybrid-cloud");
    assert_eq!(cloud.len(), 16);
    for (source, reason, error, cost) in &cloud {
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.starts_with("memory guard: estimated memory")),
            "{reason:?}"
        );
        match source.as_str() {
            "cloud" => assert!(error.is_none() && *cost > 0.0, "{error:?} {cost}"),
            "unanswered" => {
                let e = error.as_deref().unwrap_or_default();
                let kinds = [
                    "http_5xx:",
                    "http_429:",
                    "cut:",
                    "stalled:",
                    "malformed:",
                    "transport:",
                    "connect:",
                ];
                assert!(kinds.iter().any(|k| e.starts_with(k)), "{e}");
            }
            other => panic!("a refused device answered: {other}"),
        }
    }
    // The cloud was killed at its 14th request: that one lost its connection, and the two
    // after it found nobody listening.
    let error = |i: usize| cloud[i].2.clone().unwrap_or_default();
    assert!(
        error(13).starts_with("transport:") || error(13).starts_with("cut:"),
        "{}",
        error(13)
    );
    assert!(
        error(14).starts_with("connect:") && error(15).starts_with("connect:"),
        "{} / {}",
        error(14),
        error(15)
    );
    // The seeded faults (15% 500, 10% 429, 10% cut, 5% stalled, 10% malformed) hit some.
    assert!(
        cloud.iter().any(|(s, ..)| s == "cloud") && cloud.iter().any(|(s, ..)| s == "unanswered")
    );

    let html = dir.path().join("report");
    let written = report(&db, &html);
    let index = std::fs::read_to_string(&written.index).expect("index");
    let table = index
        .split("hybrid-table")
        .nth(1)
        .expect("the hybrid table");
    assert!(
        table.contains("100%"),
        "SmolLM2 answered every request on the device"
    );
    assert!(index.contains("The device took no request: memory guard"));
    assert!(
        index.contains("87%") && index.contains("47 ms") && index.contains("73%"),
        "the seed's claims"
    );
}

/// SIGTERM while a stream is in flight: the stream still finishes whole (graceful shutdown),
/// then the server is gone and a new request is refused.
#[test]
fn shutdown_lets_a_stream_in_flight_finish() {
    let model = smollm2();
    let mut server = launch(model, ServerFaults::default());
    let remote = Remote::new(&server.base_url, &endpoint(30_000)).expect("client");
    let mut stream = remote.start(request(Api::Completion, 48));
    // The stream is under way before the signal.
    assert!(matches!(
        remote.next(&mut stream),
        Ok(Event::Content { .. })
    ));
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let mut tokens = 1;
    let usage = loop {
        match remote.next(&mut stream) {
            Ok(Event::Content { .. }) => tokens += 1,
            Ok(Event::Finished { usage, .. }) => break usage,
            Err(e) => panic!("the stream in flight was cut by the shutdown after {tokens}: {e}"),
        }
    };
    assert_eq!((tokens, usage.map(|u| u.completion_tokens)), (48, Some(48)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.exit_status().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.exit_status().is_some_and(|s| s.success()),
        "the server exits cleanly"
    );
    let (_, after) = collect(&remote, request(Api::Completion, 4));
    assert!(matches!(after, Err(HttpError::Connect { .. })), "{after:?}");
}

/// The on-device engine takes the hybrid case's process down (an injected abort after
/// loading): the crashed run is stored as aborted, and a second child answers every request
/// from the cloud with the crash as the reason, as the harness does.
#[test]
fn a_crash_on_the_device_falls_back_to_the_cloud() {
    smollm2();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let case = "hybrid::smollm2-135m::Q4_1::hybrid::c1";
    let request = crate::common::smoke_request(case, "crashed-run", &db);
    let abort = format!("abort:{case}");
    let child = edgebench::isolate::ChildCase {
        exe: std::path::Path::new(crate::common::CASE_EXE),
        request: &request,
        env: &[(edgebench::fault::FAULT_ENV, abort.as_str())],
    };
    let report =
        edgebench::isolate::run_hybrid_in_child(&child, "cloud-run").expect("the cloud answers");
    assert!(
        report.first_output.starts_with("0/"),
        "{}",
        report.first_output
    );
    let conn = rusqlite::Connection::open(&db).expect("open");
    let status: String = conn
        .query_row(
            "SELECT status FROM runs WHERE id = 'crashed-run'",
            [],
            |r| r.get(0),
        )
        .expect("the crashed run");
    assert_eq!(status, "aborted");
    let mut st = conn
        .prepare("SELECT source, fallback_reason FROM requests WHERE run_id = 'cloud-run'")
        .expect("query");
    let rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), report.measured_requests);
    assert!(!rows.is_empty());
    for (source, reason) in &rows {
        assert!(source == "cloud" || source == "unanswered", "{source}");
        assert!(
            reason.starts_with(
                "the on-device process crashed (the case process was killed by signal 6"
            ),
            "{reason}"
        );
    }
}

/// llama.cpp's own llama-server, started on a free loopback port with `model`; stopped (killed)
/// when dropped. The binary is `EDGEBENCH_LLAMA_SERVER`, which `cargo xtask test` builds from the
/// pinned llama-cpp-python sdist (as `cargo xtask anchor llama-server` does).
struct LlamaServer {
    child: std::process::Child,
    port: u16,
}

impl LlamaServer {
    fn start(model: &std::path::Path) -> Self {
        let var = edgebench_settings::LLAMA_SERVER_ENV;
        let binary = std::env::var_os(var).unwrap_or_else(|| {
            panic!(
                "{var} names no llama-server: run `cargo xtask test` (it builds one from the pinned sdist) or set {var}"
            )
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = std::process::Command::new(&binary)
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-t", "2", "-c", "1024", "-np", "1"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("llama-server starts");
        // Ready when /health answers 200 (it answers 503 while loading): a state, not a time.
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("llama-server exited before it was ready: {status}");
            }
            let ready = try_status(&format!("http://127.0.0.1:{port}/v1"), "/health", None);
            if ready.is_ok_and(|status| status == 200) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP engine against a server edgebench did not write: an http case through the
/// harness's child process against llama-server stores a passed run with every request of its
/// plan, each generating exactly what it asked, on a device named after llama-server; then the
/// server is killed mid-stream, and the client gets a typed error, and a refused connection after.
#[test]
fn the_http_engine_measures_llama_server_and_survives_it_dying() {
    let model = smollm2();
    let mut server = LlamaServer::start(&model);
    let scenario = http_scenario(
        "llama_server",
        &format!(
            "url = \"{}\"\nignore_eos = true\ncache_prompt = false\n",
            server.base_url()
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let (output, _, stderr) = run_inline_case(
        ("llama_server.toml", &scenario),
        "llama_server::smollm2-135m::Q4_1::http::c1",
        "llama-server-run",
        &db,
        &[],
    );
    assert!(output.status.success(), "{stderr}");
    let conn = rusqlite::Connection::open(&db).expect("open");
    let (status, host): (String, String) = conn
        .query_row(
            "SELECT r.status, d.hostname FROM runs r JOIN devices d ON d.id = r.device_id
             WHERE r.id = 'llama-server-run'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the run");
    assert_eq!(status, "passed");
    assert!(
        host.contains("llama-server"),
        "the device is the server: {host}"
    );
    let generated: Vec<i64> = conn
        .prepare("SELECT generated_tokens FROM requests WHERE run_id = 'llama-server-run' AND warmup = 0")
        .expect("query")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("values");
    assert!(!generated.is_empty());
    assert!(generated.iter().all(|&n| n == 8), "{generated:?}");

    // Killed mid-stream: a typed error, never a hang or a panic; then nobody listens.
    let remote = Remote::new(&server.base_url(), &endpoint(10_000)).expect("client");
    let mut stream = remote.start(request(Api::Completion, 400));
    assert!(
        matches!(remote.next(&mut stream), Ok(Event::Content { .. })),
        "a first token"
    );
    server.child.kill().expect("kill llama-server");
    server.child.wait().expect("reaped");
    let ended = loop {
        match remote.next(&mut stream) {
            Ok(Event::Content { .. }) => {}
            other => break other,
        }
    };
    assert!(
        matches!(
            ended,
            Err(HttpError::Transport { .. } | HttpError::Cut { .. })
        ),
        "{ended:?}"
    );
    let (_, after) = collect(&remote, request(Api::Completion, 4));
    assert!(matches!(after, Err(HttpError::Connect { .. })), "{after:?}");
}
