//! `plantao serve` as a process: killed with SIGKILL at many moments and restarted, stopped
//! gracefully, reloaded with SIGHUP, beside a `plantao run`.

#![allow(clippy::unwrap_used)]
#![allow(clippy::disallowed_methods)] // the tests wait on real processes

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(pipelines: &[(&str, &str)]) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pipelines")).unwrap();
        std::fs::write(
            dir.path().join("plantao.toml"),
            "[server]\nlisten = \"127.0.0.1:0\"\n[engine]\nshutdown_grace = \"2s\"\n",
        )
        .unwrap();
        // A second configuration on the same store, with no pipelines: for reading runs even
        // while the daemon's own configuration is broken on purpose.
        std::fs::create_dir(dir.path().join("inspect")).unwrap();
        let db = dir.path().join("plantao.db");
        std::fs::write(
            dir.path().join("inspect/plantao.toml"),
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite://{}\"\n",
                db.display()
            ),
        )
        .unwrap();
        let home = Home { dir };
        for (name, text) in pipelines {
            home.pipeline(name, text);
        }
        home
    }

    fn pipeline(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(format!("pipelines/{name}.toml")), text).unwrap();
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("plantao.toml")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_plantao"));
        c.arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("PLANTAO_CONFIG");
        c
    }

    fn serve(&self, log: &str) -> Child {
        let log = std::fs::File::create(self.dir.path().join(log)).unwrap();
        self.command(&["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Waits (60 s at most) until the log says plantao serves.
    fn wait_serving(&self, log: &str) {
        wait_for(
            || self.log(log).contains("plantao is serving"),
            "serve to start",
        );
    }

    fn runs(&self) -> Vec<serde_json::Value> {
        let Output {
            stdout,
            status,
            stderr,
        } = Command::new(env!("CARGO_BIN_EXE_plantao"))
            .arg("--config")
            .arg(self.dir.path().join("inspect/plantao.toml"))
            .args(["runs", "--json", "--limit", "100000"])
            .output()
            .unwrap();
        assert!(status.success(), "{}", String::from_utf8_lossy(&stderr));
        serde_json::from_slice::<serde_json::Value>(&stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

/// The address a daemon logged it listens on (HOST:PORT).
fn address_of(log: &str) -> String {
    let after = log.split("listen=").nth(1).unwrap();
    after.split_whitespace().next().unwrap().to_owned()
}

/// `plantao healthcheck` against a daemon: its exit code and what it printed.
fn healthcheck(home: &Home, log: &str) -> (i32, String) {
    let out = home
        .command(&["healthcheck", "--address", &address_of(&home.log(log))])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The node id a daemon logged when it started serving.
fn node_of(log: &str) -> Option<String> {
    Some(log.split("node=\"").nth(1)?.split('"').next()?.to_owned())
}

fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A small deterministic generator, so a failing sequence of kill moments can be replayed.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, from: u64, to: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        from + self.0 % (to - from)
    }
}

#[test]
fn killed_at_twenty_moments_no_tick_is_lost_or_doubled_and_nothing_stays_running() {
    let home = Home::new(&[(
        "tick",
        "schedule = \"* * * * * *\"\nconcurrency = \"allow\"\nmax_concurrent = 5\ncatchup = \"all\"\ncatchup_limit = 3\n\
         [[steps]]\nname = \"work\"\nrun = \"sleep 0.8\"\n",
    )]);
    let mut moments = Moments(0x5eed_1234_abcd);
    for round in 0..20 {
        let log = format!("serve-{round}.log");
        let mut serve = home.serve(&log);
        home.wait_serving(&log);
        std::thread::sleep(Duration::from_millis(moments.next_ms(200, 2200)));
        serve.kill().unwrap();
        serve.wait().unwrap();
    }
    let mut serve = home.serve("serve-last.log");
    home.wait_serving("serve-last.log");
    // The runs cut by the last kill are closed once that node's lease expires (6 s).
    let node = node_of(&home.log("serve-last.log"));
    wait_for(
        || {
            home.runs()
                .iter()
                .all(|r| r["status"] != "running" || r["node"].as_str() == node.as_deref())
        },
        "the runs of the killed nodes to be closed",
    );
    signal(&serve, "TERM");
    assert!(
        serve.wait().unwrap().success(),
        "{}",
        home.log("serve-last.log")
    );

    let runs = home.runs();
    let ticks: Vec<&str> = runs
        .iter()
        .filter_map(|r| r["scheduled_for"].as_str())
        .collect();
    let distinct: BTreeSet<&str> = ticks.iter().copied().collect();
    assert_eq!(ticks.len(), distinct.len(), "a tick has two runs");
    // Every second from the first tick to the last has its run: queued and run, or recorded
    // as missed while plantao was down.
    let seconds: Vec<i64> = distinct
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp())
        .collect();
    let span = seconds.last().unwrap() - seconds.first().unwrap() + 1;
    assert_eq!(
        i64::try_from(seconds.len()).unwrap(),
        span,
        "a tick is missing between the first and the last"
    );
    let statuses: BTreeSet<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert!(
        !statuses.contains("running") && !statuses.contains("queued"),
        "left open: {statuses:?}"
    );
    assert!(
        statuses.contains("interrupted"),
        "no kill landed mid-run: {statuses:?}"
    );
    assert!(statuses.contains("succeeded"));
    for r in &runs {
        if r["status"] == "skipped" {
            assert_eq!(r["reason"], "missed", "{r}");
        }
    }
}

#[test]
fn a_plantao_run_beside_the_daemon_is_left_alone() {
    let home = Home::new(&[("long", "[[steps]]\nname = \"wait\"\nrun = \"sleep 3\"\n")]);
    let run = home
        .command(&["run", "long"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        || home.runs().iter().any(|r| r["status"] == "running"),
        "the local run to start",
    );
    let mut serve = home.serve("serve.log");
    home.wait_serving("serve.log");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        home.runs()[0]["status"],
        "running",
        "{}",
        home.log("serve.log")
    );
    let output = run.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(home.runs()[0]["status"], "succeeded");
    signal(&serve, "TERM");
    assert!(serve.wait().unwrap().success());
}

#[test]
fn sighup_reloads_and_a_broken_config_keeps_the_old_one() {
    let home = Home::new(&[(
        "old",
        "schedule = \"* * * * * *\"\n[[steps]]\nname = \"s\"\nrun = \"true\"\n",
    )]);
    let mut serve = home.serve("serve.log");
    home.wait_serving("serve.log");
    wait_for(
        || home.runs().iter().any(|r| r["pipeline"] == "old"),
        "a tick of `old`",
    );
    std::fs::remove_file(home.dir.path().join("pipelines/old.toml")).unwrap();
    home.pipeline(
        "new",
        "schedule = \"* * * * * *\"\n[[steps]]\nname = \"s\"\nrun = \"true\"\n",
    );
    signal(&serve, "HUP");
    wait_for(
        || home.log("serve.log").contains("configuration reloaded"),
        "the reload",
    );
    wait_for(
        || home.runs().iter().any(|r| r["pipeline"] == "new"),
        "a tick of `new`",
    );
    let old_count = home
        .runs()
        .iter()
        .filter(|r| r["pipeline"] == "old")
        .count();
    home.pipeline(
        "broken",
        "schedule = \"0 25 * * *\"\n[[steps]]\nname = \"s\"\nrun = \"true\"\n",
    );
    signal(&serve, "HUP");
    wait_for(
        || home.log("serve.log").contains("configuration not reloaded"),
        "the refusal",
    );
    assert!(
        home.log("serve.log")
            .contains("the hour field `25` is invalid"),
        "{}",
        home.log("serve.log")
    );
    let before = home
        .runs()
        .iter()
        .filter(|r| r["pipeline"] == "new")
        .count();
    wait_for(
        || {
            home.runs()
                .iter()
                .filter(|r| r["pipeline"] == "new")
                .count()
                > before + 1
        },
        "`new` to keep running",
    );
    assert_eq!(
        home.runs()
            .iter()
            .filter(|r| r["pipeline"] == "old")
            .count(),
        old_count,
        "`old` stopped"
    );
    signal(&serve, "TERM");
    assert!(serve.wait().unwrap().success());
}

#[test]
fn serve_without_a_config_says_how_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plantao"))
        .current_dir(dir.path())
        .env_remove("PLANTAO_CONFIG")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plantao serve --config examples/quickstart/plantao.toml"),
        "{err}"
    );
    assert!(!Path::new(&dir.path().join("plantao.db")).exists());
}

#[test]
fn trigger_pause_resume_and_next() {
    let home = Home::new(&[(
        "p",
        "schedule = \"0 12 * * *\"\ntimezone = \"America/Sao_Paulo\"\n[[steps]]\nname = \"s\"\nrun = \"echo hi\"\n",
    )]);
    let out = home.command(&["next", "p", "-n", "2"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("12:00:00 -03") && lines[0].contains("15:00:00 UTC"),
        "{text}"
    );
    let out = home.command(&["pause", "p"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&home.command(&["next", "p"]).output().unwrap().stdout)
        .into_owned();
    assert!(text.starts_with("p is paused"), "{text}");
    assert!(
        home.command(&["resume", "p"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = home.command(&["trigger", "p"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(home.runs()[0]["status"], "queued");
    let mut serve = home.serve("serve.log");
    wait_for(
        || home.runs()[0]["status"] == "succeeded",
        "the daemon to run the triggered run",
    );
    signal(&serve, "TERM");
    assert!(serve.wait().unwrap().success());
    let out = home.command(&["pause", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn status_shows_the_node_the_queue_and_each_pipeline() {
    let home = Home::new(&[
        (
            "ticking",
            "schedule = \"0 12 * * *\"\ntimezone = \"America/Sao_Paulo\"\n[[steps]]\nname = \"s\"\nrun = \"true\"\n",
        ),
        ("manual", "[[steps]]\nname = \"s\"\nrun = \"true\"\n"),
    ]);
    let text =
        |args: &[&str]| String::from_utf8(home.command(args).output().unwrap().stdout).unwrap();
    let before = text(&["status"]);
    assert!(before.starts_with("nodes: none is running"), "{before}");
    assert!(before.contains("queue: 0 queued, 0 running"), "{before}");
    assert!(
        before.contains("manual    active  on demand") && before.contains("none yet"),
        "{before}"
    );
    assert!(before.contains("12:00:00 -03"), "{before}");
    home.command(&["pause", "ticking"]).output().unwrap();
    home.command(&["trigger", "manual"]).output().unwrap();
    let mut serve = home.serve("serve.log");
    home.wait_serving("serve.log");
    wait_for(
        || home.runs()[0]["status"] == "succeeded",
        "the triggered run",
    );
    let during = text(&["status"]);
    assert!(
        during.contains("serve-") && during.contains("serve  "),
        "{during}"
    );
    assert!(during.contains("ticking   paused"), "{during}");
    assert!(during.contains("succeeded at"), "{during}");
    let json: serde_json::Value = serde_json::from_str(&text(&["status", "--json"])).unwrap();
    assert_eq!(json["nodes"][0]["alive"], true);
    assert_eq!(json["queued"], 0);
    signal(&serve, "TERM");
    assert!(serve.wait().unwrap().success());
}

#[test]
fn a_planted_secret_stays_out_of_the_daemon_log() {
    let secret = "planted-fake-secret-serve-91c";
    let home = Home::new(&[(
        "leaky",
        "schedule = \"* * * * * *\"\n[env]\nTOKEN = \"${env:TOKEN}\"\n[[steps]]\nname = \"s\"\nrun = \"echo $TOKEN; exit 3\"\n",
    )]);
    let log = std::fs::File::create(home.dir.path().join("serve.log")).unwrap();
    let mut serve = home
        .command(&["serve"])
        .env("TOKEN", secret)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    home.wait_serving("serve.log");
    wait_for(
        || home.runs().iter().any(|r| r["status"] == "failed"),
        "a failed run",
    );
    signal(&serve, "TERM");
    assert!(serve.wait().unwrap().success());
    let log = home.log("serve.log");
    assert!(log.contains("status=failed"), "{log}");
    assert!(!log.contains(secret), "{log}");
    let runs = serde_json::to_string(&home.runs()).unwrap();
    assert!(!runs.contains(secret));
}

/// A tmpfs of a few MiB mounted for one test, unmounted when dropped. Mounting needs root: the
/// test command runs as root in CI; elsewhere the test says how to run it.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it, which needs root (scripts/test runs as root in CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at.to_owned())
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while f.write_all(&chunk).and_then(|()| f.flush()).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A webhook receiver on loopback: every body it is sent, in order; it answers 200.
struct Hook {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Hook {
    fn start() -> Hook {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> =
            std::sync::Arc::default();
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut length = 0;
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            line.clear();
                            reader.read_line(&mut line).unwrap();
                            let header = line.trim_end().to_ascii_lowercase();
                            if header.is_empty() {
                                break;
                            }
                            if let Some(n) = header.strip_prefix("content-length:") {
                                length = n.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        seen.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap());
                        let _ = reader
                            .get_mut()
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                    }
                });
            }
        });
        Hook { url, bodies }
    }

    /// How many notifications of `rule` with `event` it got.
    fn got(&self, rule: &str, event: &str) -> usize {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["alert"]["rule"] == rule && b["event"] == event)
            .count()
    }
}

#[test]
fn a_full_disk_stops_claiming_and_records_every_tick_once_space_returns() {
    let hook = Hook::start();
    let home = Home::new(&[(
        "tick",
        // Each run stores a 60 KB log, so a full disk is felt within a tick or two.
        "schedule = \"* * * * * *\"\n[[steps]]\nname = \"s\"\nrun = \"head -c 60000 /dev/zero | tr '\\\\0' x\"\n",
    )]);
    let disk = SmallDisk::mount(&home.dir.path().join("small"), "3m");
    let db = disk.0.join("plantao.db");
    let storage = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite://{}\"\n",
        db.display()
    );
    // A full disk and the ticks it made miss are alerts too: the first notified without the
    // store (it cannot write), the second once the store writes again.
    let alerting = format!(
        "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n\n\
         [[alerts]]\nname = \"disk\"\nkind = \"storage\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n\n\
         [[alerts]]\nname = \"tick-missed\"\nkind = \"missed\"\nseverity = \"critical\"\npipeline = \"tick\"\nchannels = [\"hook\"]\n",
        hook.url
    );
    std::fs::write(
        home.config(),
        format!(
            "{storage}[engine]\nshutdown_grace = \"2s\"\nevaluate_every = \"200ms\"\n{alerting}"
        ),
    )
    .unwrap();
    std::fs::write(home.dir.path().join("inspect/plantao.toml"), &storage).unwrap();
    let succeeded = |home: &Home| {
        home.runs()
            .iter()
            .filter(|r| r["status"] == "succeeded")
            .count()
    };

    let mut serve = home.serve("serve.log");
    home.wait_serving("serve.log");
    wait_for(|| succeeded(&home) >= 3, "three runs before the disk fills");
    let filler = disk.fill();
    wait_for(
        || home.log("serve.log").contains("the database cannot write"),
        "the daemon to notice the full disk",
    );
    let full_since = Instant::now();
    let during = succeeded(&home);
    let (code, said) = healthcheck(&home, "serve.log");
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("\"status\":\"down\"") && said.contains("cannot write"),
        "{said}"
    );
    wait_for(
        || hook.got("disk", "firing") == 1,
        "the storage alert, sent while nothing can be written",
    );
    // Longer than the 5 s after which a tick handled late counts as missed.
    std::thread::sleep(Duration::from_secs(7));
    assert!(
        succeeded(&home) <= during + 1,
        "runs went on while the disk was full"
    );
    std::fs::remove_file(filler).unwrap();
    wait_for(
        || home.log("serve.log").contains("the database writes again"),
        "the daemon to notice space is back",
    );
    let after = succeeded(&home);
    wait_for(
        || succeeded(&home) >= after + 3,
        "runs to go on by themselves",
    );
    let (code, said) = healthcheck(&home, "serve.log");
    assert_eq!(code, 0, "{said}");
    wait_for(
        || hook.got("disk", "resolved") == 1,
        "the storage alert's resolution",
    );
    wait_for(
        || hook.got("tick-missed", "firing") == 1 && hook.got("tick-missed", "resolved") == 1,
        "the missed ticks' alert, resolved by the next tick that ran",
    );
    assert_eq!(hook.got("disk", "firing"), 1, "fired once");
    let history = Command::new(env!("CARGO_BIN_EXE_plantao"))
        .arg("--config")
        .arg(home.dir.path().join("inspect/plantao.toml"))
        .args(["alerts", "history", "--json"])
        .output()
        .unwrap();
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let disk = history
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "disk")
        .expect("the storage alert is recorded once writes work");
    assert_eq!(disk["state"], "resolved");
    assert!(
        disk["annotations"]["error"].as_str().unwrap().len() > 3,
        "{disk}"
    );
    signal(&serve, "TERM");
    assert!(serve.wait().unwrap().success(), "{}", home.log("serve.log"));
    assert!(full_since.elapsed() > Duration::from_secs(7));

    let runs = home.runs();
    let log = home.log("serve.log");
    assert!(
        runs.iter()
            .all(|r| r["status"] != "running" && r["status"] != "queued"),
        "{log}"
    );
    let mut ticks: Vec<i64> = runs
        .iter()
        .map(|r| {
            chrono::DateTime::parse_from_rfc3339(r["scheduled_for"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    ticks.sort_unstable();
    let distinct: BTreeSet<i64> = ticks.iter().copied().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick has two runs");
    let (first, last) = (ticks[0], ticks[ticks.len() - 1]);
    let every_second = usize::try_from(last - first + 1).unwrap();
    assert_eq!(ticks.len(), every_second, "a tick has no record: {ticks:?}");
    // The ticks of the outage more than 5 s old when writes came back: the latest ran as
    // catch-up, the others were recorded as missed (the default catch-up policy, `latest`).
    let missed = runs
        .iter()
        .filter(|r| r["status"] == "skipped" && r["reason"] == "missed")
        .count();
    let caught_up = runs.iter().filter(|r| r["trigger"] == "catchup").count();
    assert!(
        missed >= 1 && caught_up >= 1,
        "{missed} missed, {caught_up} caught up: {log}"
    );
}

/// A GET over a plain socket, as any client would send it: (status, body).
fn http_get(address: &str, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[test]
fn the_api_answers_tokens_made_on_the_command_line() {
    let home = Home::new(&[("hello", "[[steps]]\nname = \"s\"\nrun = \"echo hi\"\n")]);
    let made = home
        .command(&["token", "create", "--name", "grafana", "--role", "viewer"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("plt_") && token.len() == 68, "{token}");
    let listed = home.command(&["token", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("grafana") && listed.contains("viewer") && !listed.contains(&token[4..])
    );

    let mut serve = home.serve("serve.log");
    home.wait_serving("serve.log");
    let address = address_of(&home.log("serve.log"));
    let (status, body) = http_get(&address, "/api/pipelines/hello", &token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"hello\""), "{body}");
    assert_eq!(healthcheck(&home, "serve.log").0, 0);

    let revoked = home
        .command(&["token", "revoke", "grafana"])
        .output()
        .unwrap();
    assert!(revoked.status.success());
    // Revoked by another process: refused once the server reads the token again (5 s).
    wait_for(
        || http_get(&address, "/api/pipelines/hello", &token).0 == 401,
        "the revoked token to be refused",
    );
    let audit = home.command(&["audit"]).output().unwrap();
    let audit = String::from_utf8_lossy(&audit.stdout).into_owned();
    assert!(
        audit.contains("token.create") && audit.contains("token.revoke"),
        "{audit}"
    );

    signal(&serve, "TERM");
    assert!(serve.wait().unwrap().success(), "{}", home.log("serve.log"));
    let (code, said) = healthcheck(&home, "serve.log");
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("no answer"), "{said}");
}

/// A pipeline `flaky` that fails (exit `code`, default 3) with a critical rule sending to the
/// webhook `hook`.
fn flaky_home(hook: &Hook) -> Home {
    let home = Home::new(&[(
        "flaky",
        "[params.code]\ndefault = \"3\"\n[[steps]]\nname = \"s\"\nrun = \"exit $PLANTAO_PARAM_CODE\"\n\
         [[alerts]]\nname = \"flaky-failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n",
    )]);
    std::fs::write(
        home.config(),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            hook.url
        ),
    )
    .unwrap();
    home
}

/// `plantao ARGS` in `home`: exit code, standard output, standard error.
fn cli(home: &Home, args: &[&str]) -> (i32, String, String) {
    let out = home.command(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn alerts_check_ack_and_channel_test_on_the_command_line() {
    let hook = Hook::start();
    let home = flaky_home(&hook);
    let run = |args: &[&str]| cli(&home, args);
    let (code, _, _) = run(&["run", "flaky"]);
    assert_eq!(code, 1, "the run fails");

    let (code, said, _) = run(&["alerts", "check"]);
    assert_eq!(code, 0);
    assert!(
        said.contains("flaky-failed") && said.contains("fires"),
        "{said}"
    );
    let (code, said, _) = run(&["alerts"]);
    assert_eq!(
        (code, said.as_str()),
        (0, "no active alerts\n"),
        "check alone records nothing"
    );

    let (code, _, told) = run(&["alerts", "check", "--notify"]);
    assert_eq!(code, 0, "{told}");
    assert!(
        told.contains("1 notifications queued; 1 of 1 attempts delivered"),
        "{told}"
    );
    assert_eq!(hook.got("flaky-failed", "firing"), 1);
    let (_, listed, _) = run(&["alerts", "--json"]);
    let active: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let id = active[0]["id"].as_str().unwrap().to_owned();
    let (code, said, _) = run(&["alerts", "check"]);
    assert_eq!(code, 0);
    assert!(said.contains("firing"), "{said}");

    let (code, said, _) = run(&["alerts", "ack", &id]);
    assert_eq!(code, 0);
    assert!(said.contains("acknowledged"), "{said}");
    let (code, _, told) = run(&["alerts", "ack", "not-an-id"]);
    assert_eq!(code, 2);
    assert!(told.contains("is not an alert id"), "{told}");
    let (code, said, _) = run(&["alerts"]);
    assert_eq!(code, 0);
    assert!(said.contains("acknowledged by cli"), "{said}");

    let (code, said, _) = run(&["channel", "test", "hook"]);
    assert_eq!(code, 0, "{said}");
    assert!(said.starts_with("delivered to `hook`"), "{said}");
    let (code, _, told) = run(&["channel", "test", "hok"]);
    assert_eq!(
        code, 2,
        "a name that is not a channel is a usage error, as for a pipeline"
    );
    assert!(told.contains("the channels are: hook"), "{told}");

    let (code, _, _) = run(&["run", "flaky", "--param", "code=0"]);
    assert_eq!(code, 0);
    let (_, _, told) = run(&["alerts", "check", "--notify"]);
    assert!(told.contains("1 notifications queued"), "{told}");
    assert_eq!(hook.got("flaky-failed", "resolved"), 1);
    let (_, said, _) = run(&["alerts"]);
    assert_eq!(said, "no active alerts\n");
}

#[test]
fn a_silence_from_the_command_line_keeps_an_alert_quiet_until_it_is_expired() {
    let hook = Hook::start();
    let home = flaky_home(&hook);
    let run = |args: &[&str]| cli(&home, args);
    let (code, said, told) = run(&[
        "silence",
        "add",
        "pipeline=flaky",
        "--duration",
        "1h",
        "--comment",
        "fixing it",
        "--author",
        "ana",
    ]);
    assert_eq!(code, 0, "{told}");
    assert!(
        said.contains("in force") && said.contains("pipeline=flaky") && said.contains("by ana"),
        "{said}"
    );
    let (_, listed, _) = run(&["silence", "list", "--json"]);
    let silences: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let id = silences[0]["id"].as_str().unwrap().to_owned();
    let (code, _, told) = run(&[
        "silence",
        "add",
        "pipeline",
        "--duration",
        "1h",
        "--comment",
        "x",
    ]);
    assert_eq!(code, 2);
    assert!(told.contains("is not a matcher"), "{told}");

    let (code, _, _) = run(&["run", "flaky"]);
    assert_eq!(code, 1);
    let (code, _, told) = run(&["alerts", "check", "--notify"]);
    assert_eq!(code, 0, "{told}");
    let (_, said, _) = run(&["alerts"]);
    assert!(
        said.contains(&format!("firing, silenced by {id}")),
        "{said}"
    );
    assert_eq!(
        hook.got("flaky-failed", "firing"),
        0,
        "recorded, not notified"
    );

    let (code, said, _) = run(&["silence", "expire", &id]);
    assert_eq!(code, 0, "{said}");
    let (code, _, told) = run(&["silence", "expire", &id]);
    assert_eq!(code, 2);
    assert!(told.contains("already"), "{told}");
    let (_, _, told) = run(&["alerts", "check", "--notify"]);
    assert!(told.contains("1 notifications queued"), "{told}");
    assert_eq!(
        hook.got("flaky-failed", "firing"),
        1,
        "notified once the silence ended"
    );
    let (_, audit, _) = run(&["audit"]);
    assert!(
        audit.contains("silence.add") && audit.contains("silence.expire"),
        "{audit}"
    );
}
