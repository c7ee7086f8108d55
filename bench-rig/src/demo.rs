//! The demo: the lab, linewatch on its receiving end, and scripted traffic — calm, a spike,
//! calm — with a short alert window, so that within about a minute a newcomer sees the status
//! line, a high-traffic alert fire and recover, the periodic report, and the summary with its
//! histograms on exit.
//!
//! linewatch runs in the foreground with this terminal as its stdout and stderr (so its status
//! line is rewritten in place on a TTY). The generator sends each request's response after an
//! exponentially distributed delay, so the response-latency histogram has a shape.
//!
//! Every exit path cleans up: at the end of the script linewatch gets SIGINT and prints its
//! summary; Ctrl-C reaches linewatch and the generator directly (same process group) and this
//! process only waits for them; SIGTERM is passed on to both; then the lab's namespaces are
//! deleted, which removes the veth pair and the XDP program with them. A demo killed with
//! SIGKILL leaves namespaces that the next lab made on the machine (the demo's, the bench's, a
//! test's) removes.

use std::path::PathBuf;
use std::process::{Child, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::lab::Lab;
use crate::sys;
use crate::sys::{interrupt, linewatch_beside, stop_flag};

/// Demo settings; the defaults make the one-minute story.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Requests per second while calm.
    #[arg(long, default_value_t = 5.0)]
    calm: f64,
    /// Requests per second during the spike.
    #[arg(long, default_value_t = 60.0)]
    spike: f64,
    /// Seconds of calm, spike, calm.
    #[arg(long, default_value = "15,15,25", value_delimiter = ',')]
    phases: Vec<f64>,
    /// linewatch's alert threshold (requests per second over the window).
    #[arg(long, default_value_t = 20.0)]
    threshold: f64,
    /// linewatch's alert window, seconds.
    #[arg(long, default_value_t = 10)]
    window: u32,
    /// Seconds between linewatch's reports.
    #[arg(long, default_value_t = 10)]
    report_interval: u32,
    /// Mean response delay, ms.
    #[arg(long, default_value_t = 25.0)]
    response_ms: f64,
    /// The linewatch binary (default: beside this one).
    #[arg(long)]
    linewatch: Option<PathBuf>,
}

/// How long linewatch gets to attach before the demo gives up.
const ATTACH_WITHIN: Duration = Duration::from_secs(20);
/// How long linewatch gets to print its summary after SIGINT.
const EXIT_WITHIN: Duration = Duration::from_secs(15);

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<ExitCode, String> {
    let [calm1, spike, calm2] = args.phases[..] else {
        return Err("--phases takes three durations: calm,spike,calm".into());
    };
    let linewatch = args.linewatch.clone().unwrap_or_else(linewatch_beside);
    if !linewatch.is_file() {
        return Err(format!(
            "linewatch binary not found at {} (build it: cargo build --release)",
            linewatch.display()
        ));
    }
    let rig = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let stop = stop_flag();
    let mut lab = Lab::new(1).map_err(|e| e.to_string())?;
    let cores = sys::allowed_cores();
    let worker_core = cores.get(1).or(cores.first()).copied().unwrap_or(0);
    let total: f64 = calm1 + spike + calm2;
    eprintln!(
        "demo: lab {} <-> {} (namespaces {} and {}); linewatch on {}, threshold {} req/s over {} s",
        lab.tx_if, lab.rx_if, lab.tx_ns, lab.rx_ns, lab.rx_if, args.threshold, args.window
    );
    eprintln!(
        "demo: traffic {} req/s for {calm1} s, {} req/s for {spike} s, {} req/s for {calm2} s ({total} s; Ctrl-C ends it early)\n",
        args.calm, args.spike, args.calm
    );
    let mut monitor = lab
        .rx_ns
        .exec(&linewatch)
        .args(["--interface", &lab.rx_if, "--port", "80"])
        .args(["--cores", &worker_core.to_string()])
        .args(["--threshold", &args.threshold.to_string()])
        .args(["--window", &args.window.to_string()])
        .args(["--report-interval", &args.report_interval.to_string()])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start linewatch: {e}"))?;
    let result = drive(args, &lab, &rig, &mut monitor, &stop, [calm1, spike, calm2]);
    // linewatch prints its summary on SIGINT (also when Ctrl-C already sent it one).
    if let Ok(None) = monitor.try_wait() {
        interrupt(&monitor);
        wait_for(&mut monitor, EXIT_WITHIN);
    }
    lab.teardown();
    let code = result?;
    eprintln!("\ndemo: done; the lab is removed.");
    Ok(code)
}

fn drive(
    args: &DemoArgs,
    lab: &Lab,
    rig: &std::path::Path,
    monitor: &mut Child,
    stop: &std::sync::atomic::AtomicBool,
    [calm1, spike, calm2]: [f64; 3],
) -> Result<ExitCode, String> {
    // linewatch is capturing once its XDP program is on the interface.
    let deadline = Instant::now() + ATTACH_WITHIN;
    loop {
        if let Ok(Some(status)) = monitor.try_wait() {
            return Err(format!("linewatch exited before capturing ({status})"));
        }
        let link = lab
            .rx_ns
            .ip(&["-d", "link", "show", "dev", &lab.rx_if])
            .unwrap_or_default();
        if link.contains("prog/xdp") {
            break;
        }
        if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
            return Err("linewatch did not start capturing".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let phases = format!(
        "{}x{calm1},{}x{spike},{}x{calm2}",
        args.calm, args.spike, args.calm
    );
    let mut generator = lab
        .tx_ns
        .exec(rig)
        .args(["generate", "--interface", &lab.tx_if, "--tx", "afpacket"])
        .args([
            "--script",
            &phases,
            "--responses-ms",
            &args.response_ms.to_string(),
        ])
        .args(["--frame-size", "0", "--flows", "256"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the traffic generator: {e}"))?;
    loop {
        if let Some(status) = generator.try_wait().map_err(|e| e.to_string())? {
            if !status.success() && !stop.load(Ordering::Relaxed) {
                return Err(format!("the traffic generator failed ({status})"));
            }
            break;
        }
        if stop.load(Ordering::Relaxed) {
            // Ctrl-C reached the generator too; SIGTERM did not: pass it on.
            interrupt(&generator);
            wait_for(&mut generator, Duration::from_secs(5));
            break;
        }
        if let Ok(Some(status)) = monitor.try_wait() {
            interrupt(&generator);
            wait_for(&mut generator, Duration::from_secs(5));
            return Err(format!("linewatch exited during the demo ({status})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the last responses arrive and the status line show the calm, then stop linewatch.
    std::thread::sleep(Duration::from_millis(500));
    Ok(if stop.load(Ordering::Relaxed) {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

fn wait_for(child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
