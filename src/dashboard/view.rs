//! Draws one frame of the dashboard from the [`App`]: the header, the alert banner, the rate
//! chart with the threshold across it, the panels, the footer; help over it on `?`; a line
//! saying so when the terminal is too small. Drawing reads the state and never changes it.
//!
//! ```text
//! header   what is captured, time, frames/s, requests/s, drops, CPU
//! banner   ALERT (red) or ok, the window's rate against the threshold
//! chart    requests/s over the alert window, the threshold as a line
//! panels   sections+hosts │ hosts │ user agents
//!          status │ methods │ connections+scanners │ latency
//!          recent requests │ alert history
//! footer   keys, sort, filter
//! ```

use std::time::SystemTime;

use linewatch_engine::aggregate::CONSOLE_RATE_SECONDS;
use linewatch_report::alert::{raised_line, recovered_line};
use linewatch_report::time::format_time;
use linewatch_report::units::{bytes as size, short_count as count};
use linewatch_report::{escape, AlertKind, AlertRecord, Percentiles};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row as TableRow, Table, Wrap,
};
use ratatui::Frame;

use super::app::{App, Panel, Row, Sort};

/// Below this width the chart's titles are short.
const WIDE_CHART: u16 = 110;

/// Below this width a table shows one count: the one it is sorted by.
const WIDE_TABLE: u16 = 34;

/// The smallest terminal the dashboard draws in.
pub(crate) const MIN_WIDTH: u16 = 80;
pub(crate) const MIN_HEIGHT: u16 = 24;

/// What the header says besides the snapshot: fixed for the run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Header {
    /// What is captured and how, e.g. `replay of x.pcap at 4× (2 workers)`.
    pub(crate) source: String,
    /// The threshold is learned (`--baseline`).
    pub(crate) baseline: bool,
    /// The process's CPU use over the last second, percent of one core.
    pub(crate) cpu_percent: Option<f64>,
    /// The newest notice (a block that failed, ...), if any.
    pub(crate) notice: Option<String>,
}

const FOCUS: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
const DIM: Style = Style::new().fg(Color::DarkGray);

/// Draws the whole screen.
pub(crate) fn draw(frame: &mut Frame<'_>, app: &App, header: &Header) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "terminal too small: {}x{}; the dashboard needs at least {MIN_WIDTH}x{MIN_HEIGHT} \
             (q quits)",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let [top, banner, chart, row1, row2, row3, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(3),
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Fill(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, top, app, header);
    draw_banner(frame, banner, app);
    draw_chart(frame, chart, app, header);
    let [sections, hosts, agents] = Layout::horizontal([Constraint::Fill(1); 3]).areas(row1);
    table(
        frame,
        sections,
        app,
        Panel::Sections,
        &retained(app, "top sections (with hosts)"),
    );
    table(frame, hosts, app, Panel::Hosts, &retained(app, "top hosts"));
    let with_top_by = app.console().is_some_and(|c| !c.total.top_by.is_empty());
    let agents_title = if with_top_by {
        "user agents, then --top-by"
    } else {
        "user agents"
    };
    table(
        frame,
        agents,
        app,
        Panel::Agents,
        &retained(app, agents_title),
    );
    let [status, methods, conns, latency] =
        Layout::horizontal([Constraint::Fill(1); 4]).areas(row2);
    table(frame, status, app, Panel::Status, "status");
    table(frame, methods, app, Panel::Methods, "methods");
    table(frame, conns, app, Panel::Connections, "connections");
    draw_latency(frame, latency, app);
    let [recent, alerts] =
        Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(row3);
    draw_recent(frame, recent, app);
    draw_alerts(frame, alerts, app);
    draw_footer(frame, footer, app, header);
    if app.help {
        draw_help(frame, area);
    }
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, app: &App, header: &Header) {
    let s = &app.view;
    let time = if s.second == 0 {
        "waiting for the first second".to_owned()
    } else {
        format_time(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s.second))
    };
    let drops = Span::styled(
        format!("{} drops", count(s.drops)),
        if s.drops > 0 {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        },
    );
    let cpu = header
        .cpu_percent
        .map_or_else(|| "CPU -".to_owned(), |c| format!("CPU {c:.0}%"));
    // The figures first, what is captured last: a narrow screen cuts the end.
    let line = Line::from(vec![
        Span::styled(" linewatch ", Style::new().bold().reversed()),
        Span::raw(format!(
            " {time} │ {} frames/s │ {} req/s │ ",
            count(s.pps),
            count(s.rps)
        )),
        drops,
        Span::raw(format!(
            " │ {cpu} │ {} requests │ {}",
            count(s.requests),
            header.source
        )),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// The newest high-traffic alert still active.
fn active_alert(app: &App) -> Option<&AlertRecord> {
    app.console()?
        .alerts
        .iter()
        .rev()
        .find(|a| a.kind == AlertKind::HighTraffic && a.recovered_at.is_none())
}

fn draw_banner(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let s = &app.view;
    let window = app.console().map_or(0, |c| c.window_secs);
    let against = match s.threshold {
        Some(t) => format!("{} {t:.2}", if s.window_rate > t { ">" } else { "<=" }),
        None => "(learning the baseline)".to_owned(),
    };
    let mut spans = if s.alert_active {
        let since = active_alert(app).map_or_else(String::new, |a| {
            format!(", raised at {}", format_time(a.triggered_at))
        });
        vec![Span::styled(
            format!(
                " ALERT  high traffic: {:.2} req/s over the last {window} s {against}{since} ",
                s.window_rate
            ),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        )]
    } else {
        vec![Span::styled(
            format!(
                " ok  {:.2} req/s over the last {window} s {against} ",
                s.window_rate
            ),
            Style::new().fg(Color::Green),
        )]
    };
    // Port scanners flagged now: the other kind of alert.
    let scanners: Vec<String> = app.console().map_or_else(Vec::new, |c| {
        c.alerts
            .iter()
            .filter(|a| a.kind == AlertKind::PortScan && a.recovered_at.is_none())
            .filter_map(|a| a.source.map(|s| s.to_string()))
            .collect()
    });
    if !scanners.is_empty() {
        spans.push(Span::styled(
            format!(
                " PORT SCAN  {} flagged: {} ",
                scanners.len(),
                scanners.join(", ")
            ),
            Style::new()
                .fg(Color::White)
                .bg(Color::Magenta)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if app.paused {
        spans.push(Span::styled(
            " PAUSED (p resumes; counting goes on) ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    if app.finished {
        spans.push(Span::styled(
            " input ended: q quits and prints the summary ",
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_chart(frame: &mut Frame<'_>, area: Rect, app: &App, header: &Header) {
    let s = &app.view;
    let (history, window) = app
        .console()
        .map_or((&[][..], 1), |c| (&c.rate_history[..], c.window_secs));
    let n = history.len();
    let points: Vec<(f64, f64)> = history
        .iter()
        .enumerate()
        .map(|(i, &r)| (i as f64 - (n as f64 - 1.0), r as f64))
        .collect();
    // The engine keeps at most CONSOLE_RATE_SECONDS of a longer window.
    let shown = window.min(CONSOLE_RATE_SECONDS as u64);
    let span = (shown.max(2) - 1) as f64;
    let peak = history.iter().copied().max().unwrap_or(0) as f64;
    let top = (peak.max(s.threshold.unwrap_or(0.0)).max(s.window_rate) * 1.15).max(1.0);
    // The colours are the legend: the title names each line in its colour (a legend box
    // would hide part of a small chart).
    const RATE: Color = Color::Cyan;
    const THRESHOLD: Color = Color::Red;
    const AVERAGE: Color = Color::Yellow;
    let line = |data, colour| {
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(colour))
            .data(data)
    };
    let average_line = [(-span, s.window_rate), (0.0, s.window_rate)];
    let threshold_line = s.threshold.map(|t| [(-span, t), (0.0, t)]);
    let mut datasets = vec![line(&points, RATE)];
    if let Some(t) = &threshold_line {
        datasets.push(line(t, THRESHOLD));
    }
    datasets.push(line(&average_line, AVERAGE));
    let wide = area.width >= WIDE_CHART;
    let mut names = Vec::new();
    if wide {
        names.push(Span::styled(" ── requests/s ", Style::new().fg(RATE)));
    }
    names.push(Span::styled(
        match s.threshold {
            Some(t) if header.baseline => format!(" ── threshold {t:.2}/s (learned) "),
            Some(t) => format!(" ── threshold {t:.2}/s "),
            None => " learning the baseline: no threshold yet ".to_owned(),
        },
        Style::new().fg(THRESHOLD),
    ));
    names.push(Span::styled(
        if wide {
            format!(" ── window average {:.2}/s ", s.window_rate)
        } else {
            format!(" ── average {:.2}/s ", s.window_rate)
        },
        Style::new().fg(AVERAGE),
    ));
    let title = match (wide, shown < window) {
        (true, false) => format!(" requests/s over the alert window ({window} s) "),
        (true, true) => format!(" requests/s, the last {shown} s of the {window} s alert window "),
        (false, false) => format!(" req/s, alert window {window} s "),
        (false, true) => format!(" req/s, last {shown} s "),
    };
    let block = Block::bordered()
        .title(title)
        .title(Line::from(names).right_aligned());
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([-span, 0.0])
                .labels([format!("-{}s", shown.max(2) - 1), "now".to_owned()])
                .style(DIM),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels([
                    "0".to_owned(),
                    format!("{:.0}", top / 2.0),
                    format!("{top:.0}"),
                ])
                .style(DIM),
        );
    frame.render_widget(chart, area);
}

/// A panel's block: its title, the filter when it narrows the panel (or says that it does
/// not), highlighted when focused.
fn block(app: &App, panel: Panel, title: &str) -> Block<'static> {
    let mut title = format!(" {title} ");
    if let Some(f) = &app.filter {
        if panel.filtered() {
            title.push_str(&format!("[{}] ", f.text()));
        } else {
            title.push_str("(all) ");
        }
    }
    let block = Block::bordered().title(title);
    if app.focus == panel {
        block.border_style(FOCUS)
    } else {
        block
    }
}

/// `title`, with `--retention`'s span when the tables cover only the last stretch.
fn retained(app: &App, title: &str) -> String {
    match app.console().and_then(|c| c.total.retained.as_ref()) {
        Some(r) => format!("{title} (last {} s)", r.retention_secs),
        None => title.to_owned(),
    }
}

fn table(frame: &mut Frame<'_>, area: Rect, app: &App, panel: Panel, title: &str) {
    let rows = app.rows(panel);
    let has_bytes = rows.iter().any(|r| r.bytes.is_some());
    let narrow = area.width < WIDE_TABLE;
    let columns = Columns {
        requests: !(narrow && has_bytes && app.sort == Sort::Bytes),
        bytes: has_bytes && (!narrow || app.sort == Sort::Bytes),
    };
    let bytes = columns.bytes;
    let body: Vec<TableRow<'_>> = rows
        .iter()
        .skip(app.scroll(panel))
        .map(|r| table_row(r, columns))
        .collect();
    let mut widths = vec![Constraint::Fill(1)];
    let mut head = vec![Cell::from("")];
    if columns.requests {
        widths.push(Constraint::Length(7));
        head.push(Cell::from("req"));
    }
    if columns.bytes {
        widths.push(Constraint::Length(8));
        head.push(Cell::from("bytes"));
    }
    let sorted = |s: Sort| {
        if app.sort == s && bytes {
            Style::new().add_modifier(Modifier::UNDERLINED)
        } else {
            Style::new()
        }
    };
    let head: Vec<Cell<'_>> = head
        .into_iter()
        .enumerate()
        .map(|(i, c)| match (i, columns.requests) {
            (1, true) => c.style(sorted(Sort::Requests)),
            (1, false) | (2, _) => c.style(sorted(Sort::Bytes)),
            _ => c,
        })
        .collect();
    let widget = Table::new(body, widths)
        .header(TableRow::new(head).style(DIM))
        .column_spacing(1)
        .block(block(app, panel, title));
    frame.render_widget(widget, area);
}

/// The counts a table shows.
#[derive(Debug, Clone, Copy)]
struct Columns {
    requests: bool,
    bytes: bool,
}

fn table_row(r: &Row, columns: Columns) -> TableRow<'static> {
    let label = if r.indent {
        format!(" └ {}", r.label)
    } else {
        r.label.clone()
    };
    let mut requests = count(r.requests);
    if r.approximate {
        requests.insert(0, '~');
    }
    let mut cells = vec![Cell::from(label)];
    if columns.requests {
        cells.push(Cell::from(Line::from(requests).alignment(Alignment::Right)));
    }
    if columns.bytes {
        let b = r.bytes.map_or_else(String::new, size);
        cells.push(Cell::from(Line::from(b).alignment(Alignment::Right)));
    }
    let row = TableRow::new(cells);
    if r.indent {
        row.style(DIM)
    } else {
        row
    }
}

fn draw_latency(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let mut lines = Vec::new();
    if let Some(c) = app.console() {
        for (name, p) in [
            ("response", &c.response_latency_us),
            ("capture", &c.capture_latency_us),
        ] {
            if p.count == 0 && name == "capture" {
                continue;
            }
            lines.push(Line::from(format!("{name} (n={})", count(p.count))).bold());
            lines.extend(percentile_lines(p));
        }
    }
    let block = Block::bordered().title(" latency (since start) ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn percentile_lines(p: &Percentiles) -> Vec<Line<'static>> {
    if p.count == 0 {
        return vec![Line::from(" none yet").style(DIM)];
    }
    vec![
        Line::from(format!(" p50 {}  p90 {}", micros(p.p50), micros(p.p90))),
        Line::from(format!(" p99 {}  max {}", micros(p.p99), micros(p.max))),
    ]
}

fn draw_recent(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let shown = app.recent_shown();
    let rows: Vec<TableRow<'_>> = shown
        .iter()
        .skip(app.scroll(Panel::Recent))
        .map(|r| {
            let time = format_time(r.ts);
            let status = r.status.map_or_else(|| "…".to_owned(), |s| s.to_string());
            let status_style = match r.status {
                Some(500..) => Style::new().fg(Color::Red),
                Some(400..) => Style::new().fg(Color::Yellow),
                _ => Style::new(),
            };
            TableRow::new(vec![
                Cell::from(time.get(11..19).unwrap_or(&time).to_owned()),
                Cell::from(escape::terminal_string(r.method.bytes())),
                Cell::from(escape::terminal_string(r.host.bytes())),
                Cell::from(escape::terminal_string(r.target.bytes())),
                Cell::from(status).style(status_style),
                Cell::from(
                    Line::from(r.latency_us.map_or_else(String::new, micros))
                        .alignment(Alignment::Right),
                ),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Fill(2),
        Constraint::Fill(3),
        Constraint::Length(6),
        Constraint::Length(9),
    ];
    let head = TableRow::new(["time", "method", "host", "target", "status", "latency"]).style(DIM);
    let widget = Table::new(rows, widths)
        .header(head)
        .column_spacing(1)
        .block(block(app, Panel::Recent, "most recent requests"));
    frame.render_widget(widget, area);
}

fn draw_alerts(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let mut lines = Vec::new();
    if let Some(c) = app.console() {
        for a in c.alerts.iter().rev() {
            let (style, tail) = match recovered_line(a) {
                Some(r) => (Style::new().fg(Color::Green), Some(r)),
                None => (Style::new().fg(Color::Red).bold(), None),
            };
            lines.push(Line::from(raised_line(a)).style(style));
            if let Some(tail) = tail {
                lines.push(Line::from(format!("  {tail}")).style(DIM));
            }
        }
    }
    if lines.is_empty() {
        lines.push(Line::from("no alerts yet").style(DIM));
    }
    let widget = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((
            u16::try_from(app.scroll(Panel::Alerts)).unwrap_or(u16::MAX),
            0,
        ))
        .block(block(app, Panel::Alerts, "alert history (newest first)"));
    frame.render_widget(widget, area);
}

fn draw_footer(frame: &mut Frame<'_>, area: Rect, app: &App, header: &Header) {
    let line = if let Some(text) = &app.editing {
        Line::from(vec![
            Span::styled(" filter: ", FOCUS),
            Span::raw(format!("{text}█")),
            Span::styled(
                "  (substring or regular expression; Enter applies, Esc cancels)",
                DIM,
            ),
        ])
    } else {
        // What is in force first: the keys' reminder is what a narrow screen cuts.
        let mut spans = Vec::new();
        if let Some(f) = &app.filter {
            spans.push(Span::styled(
                format!(
                    " filter: {} ({}) ",
                    f.text(),
                    if f.is_regex() { "regex" } else { "substring" }
                ),
                Style::new().fg(Color::Black).bg(Color::Cyan),
            ));
        }
        if let Some(n) = &header.notice {
            spans.push(Span::styled(
                format!(" {n} "),
                Style::new().fg(Color::Yellow),
            ));
        }
        spans.push(Span::styled(
            format!(
                " q quit  p pause  Tab/←→ panel  ↑↓ scroll  s sort: {}  / filter  Esc clear  \
                 ? help ",
                app.sort.name()
            ),
            DIM,
        ));
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

const HELP: &str = "\
q, Ctrl-C    quit (the exit summary prints after the screen is restored)
p            pause the view (counting goes on)
Tab, ← →     move between panels (the focused one is highlighted)
↑ ↓          scroll the focused panel
s            sort the tables by requests or by bytes
/            filter: a substring or regular expression (case-insensitive)
             narrowing sections, hosts, user agents, clients, recent requests
Esc          clear the filter (or close this help)
?            this help

The chart: requests in each second of the alert window, the threshold (red)
and the window's average (yellow); an alert is raised when the average goes
above the threshold. Tables count everything since start.";

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let width = 80.min(area.width);
    let height = 18.min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(HELP).block(Block::bordered().title(" help (Esc or ? closes) ")),
        popup,
    );
}

/// `250µs`, `1.2ms`, `3.40s`.
fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use linewatch_engine::aggregate::Snapshot;
    use linewatch_report::ConsoleView;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use crate::dashboard::input::Action;

    /// The screen `app` draws at `width` x `height`, as text.
    fn drawn(app: &App, header: &Header, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, app, header)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let mut text = String::new();
        for y in 0..height {
            for x in 0..width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    fn app(threshold: Option<f64>, active: bool) -> App {
        let mut app = App::default();
        app.update(
            Arc::new(Snapshot {
                second: 1_700_000_000,
                rps: 42,
                drops: 3,
                window_rate: 12.5,
                threshold,
                alert_active: active,
                console: Some(Arc::new(ConsoleView {
                    rate_history: vec![1, 5, 40, 42],
                    window_secs: 4,
                    ..ConsoleView::default()
                })),
                ..Snapshot::default()
            }),
            Vec::new(),
        );
        app
    }

    #[test]
    fn the_threshold_or_the_learning_is_named_and_the_banner_follows_the_alert() {
        let header = Header {
            source: "replay x.pcap".to_owned(),
            baseline: true,
            cpu_percent: Some(7.0),
            notice: None,
        };
        let learning = drawn(&app(None, false), &header, 120, 40);
        assert!(
            learning.contains("learning the baseline: no threshold yet"),
            "{learning}"
        );
        assert!(
            learning.contains(" ok  12.50 req/s over the last 4 s"),
            "{learning}"
        );
        assert!(learning.contains("replay x.pcap"), "{learning}");
        assert!(
            learning.contains("42 req/s │ 3 drops │ CPU 7%"),
            "{learning}"
        );

        let learned = drawn(&app(Some(10.0), true), &header, 120, 40);
        assert!(
            learned.contains("── threshold 10.00/s (learned)"),
            "{learned}"
        );
        assert!(
            learned.contains(" ALERT  high traffic: 12.50 req/s over the last 4 s > 10.00"),
            "{learned}"
        );
        assert!(learned.contains("no alerts yet"), "{learned}");
        assert!(
            learned.contains("requests/s over the alert window (4 s)"),
            "{learned}"
        );

        // A window longer than the engine keeps: the chart says what it shows.
        let mut long = app(Some(10.0), false);
        let mut snapshot = (*long.view).clone();
        let mut console = snapshot.console.as_deref().cloned().unwrap();
        console.window_secs = 3600;
        snapshot.console = Some(Arc::new(console));
        long.update(Arc::new(snapshot), Vec::new());
        let screen = drawn(&long, &header, 120, 40);
        assert!(
            screen.contains("requests/s, the last 900 s of the 3600 s alert window"),
            "{screen}"
        );
        assert!(screen.contains("-899s"), "{screen}");
    }

    #[test]
    fn a_flagged_scanner_is_in_the_banner_until_its_flag_expires() {
        let scan = |source: [u8; 4], expired: bool| AlertRecord {
            kind: AlertKind::PortScan,
            triggered_at: SystemTime::UNIX_EPOCH,
            value: 5.0,
            threshold: 3.0,
            recovered_at: expired.then_some(SystemTime::UNIX_EPOCH),
            recovered_value: None,
            window_secs: 60,
            source: Some(std::net::IpAddr::from(source)),
            blocked: false,
        };
        let mut app = App::default();
        app.update(
            Arc::new(Snapshot {
                second: 1,
                console: Some(Arc::new(ConsoleView {
                    alerts: vec![scan([10, 0, 0, 9], false), scan([10, 0, 0, 7], true)],
                    ..ConsoleView::default()
                })),
                ..Snapshot::default()
            }),
            Vec::new(),
        );
        let screen = drawn(&app, &Header::default(), 120, 40);
        assert!(
            screen.contains(" PORT SCAN  1 flagged: 10.0.0.9 "),
            "{screen}"
        );
        assert!(
            screen.contains("Port scan detected - source = 10.0.0.9"),
            "{screen}"
        );
        assert!(
            screen.contains("Port scan flag expired - source = 10.0.0.7"),
            "{screen}"
        );
    }

    #[test]
    fn too_small_help_pause_and_filter_are_shown() {
        let header = Header::default();
        let mut app = app(Some(10.0), false);
        let small = drawn(&app, &header, 79, 30);
        assert!(
            small.contains("terminal too small: 79x30; the dashboard needs at least 80x24"),
            "{small}"
        );
        let fits = drawn(&app, &header, 80, 24);
        assert!(fits.contains("most recent requests"), "{fits}");

        app.apply(Action::Help);
        let help = drawn(&app, &header, 100, 30);
        assert!(help.contains("help (Esc or ? closes)"), "{help}");
        app.apply(Action::Escape);
        app.apply(Action::Pause);
        app.apply(Action::StartFilter);
        app.apply(Action::Type('a'));
        let typing = drawn(&app, &header, 100, 30);
        assert!(
            typing.contains("PAUSED (p resumes; counting goes on)"),
            "{typing}"
        );
        assert!(typing.contains(" filter: a█"), "{typing}");
        app.apply(Action::Submit);
        let filtered = drawn(&app, &header, 100, 30);
        assert!(filtered.contains("top hosts [a]"), "{filtered}");
        assert!(filtered.contains("status (all)"), "{filtered}");
        assert!(filtered.contains("filter: a (regex)"), "{filtered}");
    }

    #[test]
    fn latencies_are_short() {
        assert_eq!(micros(250), "250µs");
        assert_eq!(micros(1_250), "1.2ms");
        assert_eq!(micros(3_400_000), "3.40s");
    }
}
