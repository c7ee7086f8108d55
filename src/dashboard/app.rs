//! The dashboard's state, without a terminal: what is shown (the last snapshot, frozen while
//! paused), the filter, the sort, the focused panel, help; and the rows each panel shows.
//!
//! Contract: [`App::apply`] changes the state for one [`Action`] and says whether to quit;
//! [`App::update`] takes a new snapshot unless paused (counting goes on either way: pausing
//! only stops the view). The filter narrows every keyed panel to the keys it matches (sections
//! with their hosts, hosts, user agents, clients, recent requests); panels that are not counted
//! by key (status, methods, latency, the rate chart, alerts) stay whole and say so. Keys are
//! matched as the screen shows them (escaped), case-insensitively: as a regular expression
//! when the text is one, else as a substring.

use std::sync::Arc;

use linewatch_engine::aggregate::Snapshot;
use linewatch_report::{escape, ConsoleView, TopEntry};
use regex::{Regex, RegexBuilder};

use super::input::Action;
use super::recent::Recent;

/// The order of the table rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sort {
    Requests,
    Bytes,
}

impl Sort {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Sort::Requests => "requests",
            Sort::Bytes => "bytes",
        }
    }
}

/// The panels, in the order Tab visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Panel {
    Sections,
    Hosts,
    Agents,
    Status,
    Methods,
    Connections,
    Recent,
    Alerts,
}

impl Panel {
    pub(crate) const ALL: [Panel; 8] = [
        Panel::Sections,
        Panel::Hosts,
        Panel::Agents,
        Panel::Status,
        Panel::Methods,
        Panel::Connections,
        Panel::Recent,
        Panel::Alerts,
    ];

    fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// The filter narrows this panel.
    pub(crate) fn filtered(self) -> bool {
        matches!(
            self,
            Panel::Sections | Panel::Hosts | Panel::Agents | Panel::Connections | Panel::Recent
        )
    }
}

/// The live filter: a case-insensitive regular expression, or a substring when the text is
/// not one.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    text: String,
    regex: Option<Regex>,
}

impl Filter {
    pub(crate) fn new(text: &str) -> Filter {
        let regex = RegexBuilder::new(text)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .ok();
        Filter {
            text: text.to_lowercase(),
            regex,
        }
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Whether it is used as a regular expression (else as a substring).
    pub(crate) fn is_regex(&self) -> bool {
        self.regex.is_some()
    }

    pub(crate) fn matches(&self, shown: &str) -> bool {
        match &self.regex {
            Some(r) => r.is_match(shown),
            None => shown.to_lowercase().contains(&self.text),
        }
    }
}

/// One row of a table panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// The key as shown (escaped); indented rows are a section's hosts.
    pub(crate) label: String,
    pub(crate) requests: u64,
    pub(crate) bytes: Option<u64>,
    /// The count is an estimate (the key took over another's slot).
    pub(crate) approximate: bool,
    pub(crate) indent: bool,
}

impl Row {
    fn entry(e: &TopEntry, indent: bool) -> Row {
        Row {
            label: escape::terminal_string(&e.key),
            requests: e.count,
            bytes: Some(e.bytes),
            approximate: e.is_approximate(),
            indent,
        }
    }

    fn count(label: impl Into<String>, requests: u64) -> Row {
        Row {
            label: label.into(),
            requests,
            bytes: None,
            approximate: false,
            indent: false,
        }
    }
}

/// What [`App::apply`] asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Continue,
    Quit,
}

/// The dashboard's state (see the module contract).
#[derive(Debug)]
pub(crate) struct App {
    /// The snapshot shown.
    pub(crate) view: Arc<Snapshot>,
    /// The recent requests shown, newest first.
    pub(crate) recent: Vec<Recent>,
    pub(crate) paused: bool,
    pub(crate) sort: Sort,
    pub(crate) focus: Panel,
    /// Rows scrolled past, per panel.
    scroll: [usize; Panel::ALL.len()],
    pub(crate) filter: Option<Filter>,
    /// The filter being typed after `/`.
    pub(crate) editing: Option<String>,
    pub(crate) help: bool,
    /// The input ended (a replay): the view stays until `q`.
    pub(crate) finished: bool,
}

impl Default for App {
    fn default() -> Self {
        App {
            view: Arc::new(Snapshot::default()),
            recent: Vec::new(),
            paused: false,
            sort: Sort::Requests,
            focus: Panel::Sections,
            scroll: [0; Panel::ALL.len()],
            filter: None,
            editing: None,
            help: false,
            finished: false,
        }
    }
}

impl App {
    /// Takes the latest snapshot and recent requests, unless paused.
    pub(crate) fn update(&mut self, view: Arc<Snapshot>, recent: Vec<Recent>) {
        if !self.paused {
            self.view = view;
            self.recent = recent;
        }
    }

    /// Applies one key's action.
    pub(crate) fn apply(&mut self, action: Action) -> Control {
        match action {
            Action::Quit => return Control::Quit,
            Action::Pause => self.paused = !self.paused,
            Action::Sort => {
                self.sort = match self.sort {
                    Sort::Requests => Sort::Bytes,
                    Sort::Bytes => Sort::Requests,
                }
            }
            Action::Help => self.help = !self.help,
            Action::Next | Action::Previous => {
                let n = Panel::ALL.len();
                let step = if action == Action::Next { 1 } else { n - 1 };
                self.focus = Panel::ALL[(self.focus.index() + step) % n];
                self.help = false;
            }
            Action::Up => {
                let s = &mut self.scroll[self.focus.index()];
                *s = s.saturating_sub(1);
            }
            Action::Down => self.scroll[self.focus.index()] += 1,
            Action::StartFilter => {
                let text = self.filter.as_ref().map(|f| f.text().to_owned());
                self.editing = Some(text.unwrap_or_default());
            }
            Action::Type(c) => {
                if let Some(t) = self.editing.as_mut() {
                    t.push(c);
                }
            }
            Action::Erase => {
                if let Some(t) = self.editing.as_mut() {
                    t.pop();
                }
            }
            Action::Submit => {
                if let Some(text) = self.editing.take() {
                    self.filter = (!text.is_empty()).then(|| Filter::new(&text));
                    self.scroll = [0; Panel::ALL.len()];
                }
            }
            Action::Escape => {
                if self.editing.take().is_none() {
                    if self.help {
                        self.help = false;
                    } else {
                        self.filter = None;
                    }
                }
            }
        }
        Control::Continue
    }

    /// Rows scrolled past in `panel`.
    pub(crate) fn scroll(&self, panel: Panel) -> usize {
        self.scroll[panel.index()]
    }

    /// The dashboard's view of the snapshot shown, when the aggregator published one.
    pub(crate) fn console(&self) -> Option<&ConsoleView> {
        self.view.console.as_deref()
    }

    fn keep(&self, shown: &str) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(shown))
    }

    /// Rows of a keyed table, filtered and sorted.
    fn entries(&self, entries: &[TopEntry]) -> Vec<Row> {
        let mut rows: Vec<Row> = entries
            .iter()
            .map(|e| Row::entry(e, false))
            .filter(|r| self.keep(&r.label))
            .collect();
        self.sort_rows(&mut rows);
        rows
    }

    fn sort_rows(&self, rows: &mut [Row]) {
        if self.sort == Sort::Bytes {
            rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.requests.cmp(&a.requests)));
        }
    }

    /// The rows `panel` shows (tables only: the chart, the header and the recent requests are
    /// drawn from the view and [`App::recent_shown`]).
    pub(crate) fn rows(&self, panel: Panel) -> Vec<Row> {
        let Some(c) = self.console() else {
            return Vec::new();
        };
        let t = &c.total;
        match panel {
            Panel::Sections => {
                let mut groups: Vec<(Row, Vec<Row>)> = Vec::new();
                for s in &t.section_hosts {
                    let section = Row::entry(&s.section, false);
                    let hosts: Vec<Row> = s.hosts.iter().map(|h| Row::entry(h, true)).collect();
                    let hosts = if self.keep(&section.label) {
                        hosts
                    } else {
                        let hosts: Vec<Row> =
                            hosts.into_iter().filter(|h| self.keep(&h.label)).collect();
                        if hosts.is_empty() {
                            continue;
                        }
                        hosts
                    };
                    groups.push((section, hosts));
                }
                if self.sort == Sort::Bytes {
                    groups.sort_by_key(|g| std::cmp::Reverse(g.0.bytes));
                }
                groups
                    .into_iter()
                    .flat_map(|(s, mut hosts)| {
                        self.sort_rows(&mut hosts);
                        std::iter::once(s).chain(hosts)
                    })
                    .collect()
            }
            Panel::Hosts => self.entries(&t.hosts),
            Panel::Agents => {
                // The user agents, then each `--top-by` table under a line naming it.
                let mut rows = self.entries(&t.user_agents);
                for table in &t.top_by {
                    let entries = self.entries(&table.entries);
                    if entries.is_empty() {
                        continue;
                    }
                    rows.push(Row::count(format!("by {}", table.by), table.total));
                    rows.extend(entries.into_iter().map(|mut r| {
                        r.indent = true;
                        r
                    }));
                }
                rows
            }
            Panel::Connections => {
                let mut rows = vec![
                    Row::count("new connections", t.connections),
                    Row::count("scanners flagged", c.scanners),
                ];
                rows.extend(
                    self.entries(&t.connection_sources)
                        .into_iter()
                        .map(|mut r| {
                            // Sources of new connections carry no request bytes.
                            r.indent = true;
                            r.bytes = None;
                            r
                        }),
                );
                rows
            }
            Panel::Status => {
                const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
                let mut rows: Vec<Row> = CLASSES
                    .iter()
                    .zip(t.status_classes)
                    .filter(|(_, n)| *n > 0)
                    .map(|(name, n)| Row::count(*name, n))
                    .collect();
                let mut codes: Vec<Row> = t
                    .status
                    .iter()
                    .map(|(code, n)| Row {
                        indent: true,
                        ..Row::count(code.to_string(), *n)
                    })
                    .collect();
                codes.sort_by_key(|c| std::cmp::Reverse(c.requests));
                rows.extend(codes);
                rows
            }
            Panel::Methods => t
                .methods
                .iter()
                .map(|(name, n)| Row::count(*name, *n))
                .collect(),
            Panel::Recent | Panel::Alerts => Vec::new(),
        }
    }

    /// The recent requests the filter keeps (host, target, user agent or client), newest
    /// first.
    pub(crate) fn recent_shown(&self) -> Vec<&Recent> {
        self.recent
            .iter()
            .filter(|r| {
                let Some(f) = &self.filter else {
                    return true;
                };
                [
                    r.host.bytes(),
                    r.target.bytes(),
                    r.user_agent.bytes(),
                    r.method.bytes(),
                ]
                .iter()
                .any(|b| f.matches(&escape::terminal_string(b)))
                    || f.matches(&r.client.0.to_string())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linewatch_report::{Breakdown, SectionHosts};

    fn entry(key: &str, count: u64, bytes: u64) -> TopEntry {
        TopEntry {
            key: key.as_bytes().to_vec(),
            count,
            error: 0,
            bytes,
            truncated: false,
        }
    }

    fn app() -> App {
        let total = Breakdown {
            hosts: vec![
                entry("api.example", 50, 1_000),
                entry("cdn.example", 30, 90_000),
                entry("www.example", 20, 2_000),
            ],
            section_hosts: vec![
                SectionHosts {
                    section: entry("/api", 50, 1_000),
                    hosts: vec![entry("api.example", 45, 900), entry("www.example", 5, 100)],
                },
                SectionHosts {
                    section: entry("/static", 30, 90_000),
                    hosts: vec![entry("cdn.example", 30, 90_000)],
                },
            ],
            user_agents: vec![entry("curl/8", 60, 0), entry("Mozilla/5.0 (X11)", 40, 0)],
            status: vec![(200, 90), (404, 10)],
            status_classes: [0, 90, 0, 10, 0, 0],
            methods: vec![("GET", 100)],
            ..Breakdown::default()
        };
        let snapshot = Snapshot {
            second: 1,
            console: Some(Arc::new(ConsoleView {
                total,
                ..ConsoleView::default()
            })),
            ..Snapshot::default()
        };
        let mut app = App::default();
        app.update(Arc::new(snapshot), Vec::new());
        app
    }

    fn labels(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.label.as_str()).collect()
    }

    #[test]
    fn top_by_tables_follow_the_user_agents_and_obey_the_filter() {
        let mut app = app();
        let mut console = (*app.view.console.clone().unwrap()).clone();
        console.total.top_by = vec![linewatch_report::TopByTable {
            by: linewatch_report::TopByKey::Client,
            total: 100,
            entries: vec![entry("10.0.0.1", 70, 700), entry("10.0.0.2", 30, 300)],
        }];
        let snapshot = Snapshot {
            second: 2,
            console: Some(Arc::new(console)),
            ..Snapshot::default()
        };
        app.update(Arc::new(snapshot), Vec::new());
        assert_eq!(
            labels(&app.rows(Panel::Agents)),
            [
                "curl/8",
                "Mozilla/5.0 (X11)",
                "by client",
                "10.0.0.1",
                "10.0.0.2"
            ]
        );
        type_filter(&mut app, "10.0.0.2");
        assert_eq!(labels(&app.rows(Panel::Agents)), ["by client", "10.0.0.2"]);
    }

    /// `/`, the text after what is there (the current filter), Enter.
    fn type_filter(app: &mut App, text: &str) {
        app.apply(Action::StartFilter);
        for c in text.chars() {
            app.apply(Action::Type(c));
        }
        app.apply(Action::Submit);
    }

    #[test]
    fn the_filter_narrows_keyed_panels_and_esc_clears_it() {
        let mut app = app();
        type_filter(&mut app, "WWW");
        assert_eq!(labels(&app.rows(Panel::Hosts)), ["www.example"]);
        // A section stays when one of its hosts matches, with only the matching hosts.
        assert_eq!(labels(&app.rows(Panel::Sections)), ["/api", "www.example"]);
        assert!(app.rows(Panel::Agents).is_empty());
        // Status and methods are not counted by key: whole.
        assert_eq!(app.rows(Panel::Status).len(), 4);
        assert!(!Panel::Status.filtered() && Panel::Hosts.filtered());

        // A matching section keeps all its hosts; a regular expression works.
        app.apply(Action::Escape);
        type_filter(&mut app, "^/sta");
        assert!(app.filter.as_ref().unwrap().is_regex());
        assert_eq!(
            labels(&app.rows(Panel::Sections)),
            ["/static", "cdn.example"]
        );
        // Not a regular expression: a substring.
        app.apply(Action::Escape);
        type_filter(&mut app, "(x11");
        assert!(!app.filter.as_ref().unwrap().is_regex());
        assert_eq!(labels(&app.rows(Panel::Agents)), ["Mozilla/5.0 (X11)"]);

        app.apply(Action::Escape);
        assert!(app.filter.is_none());
        assert_eq!(app.rows(Panel::Hosts).len(), 3);
        // `/` edits the filter in force; Esc while typing cancels the typing, not the filter.
        type_filter(&mut app, "cdn");
        app.apply(Action::StartFilter);
        assert_eq!(
            app.editing.as_deref(),
            Some("cdn"),
            "editing starts from the filter"
        );
        app.apply(Action::Erase);
        app.apply(Action::Escape);
        assert_eq!(app.filter.as_ref().map(Filter::text), Some("cdn"));
        // An empty filter clears it.
        app.apply(Action::StartFilter);
        for _ in 0..3 {
            app.apply(Action::Erase);
        }
        app.apply(Action::Submit);
        assert!(app.filter.is_none());
    }

    #[test]
    fn sort_cycles_between_requests_and_bytes() {
        let mut app = app();
        assert_eq!(
            labels(&app.rows(Panel::Hosts)),
            ["api.example", "cdn.example", "www.example"]
        );
        app.apply(Action::Sort);
        assert_eq!(app.sort, Sort::Bytes);
        assert_eq!(
            labels(&app.rows(Panel::Hosts)),
            ["cdn.example", "www.example", "api.example"]
        );
        assert_eq!(
            labels(&app.rows(Panel::Sections)),
            [
                "/static",
                "cdn.example",
                "/api",
                "api.example",
                "www.example"
            ]
        );
        app.apply(Action::Sort);
        assert_eq!(app.sort, Sort::Requests);
    }

    #[test]
    fn pause_freezes_the_view_and_quit_quits() {
        let mut app = app();
        assert_eq!(app.apply(Action::Pause), Control::Continue);
        assert!(app.paused);
        app.update(Arc::new(Snapshot::default()), Vec::new());
        assert_eq!(app.view.second, 1, "paused: the new snapshot is not shown");
        app.apply(Action::Pause);
        app.update(Arc::new(Snapshot::default()), Vec::new());
        assert_eq!(app.view.second, 0, "running again: it is");
        assert_eq!(app.apply(Action::Quit), Control::Quit);
    }

    #[test]
    fn tab_and_arrows_move_the_focus_and_scroll_it() {
        let mut app = app();
        assert_eq!(app.focus, Panel::Sections);
        app.apply(Action::Previous);
        assert_eq!(app.focus, Panel::Alerts);
        app.apply(Action::Next);
        app.apply(Action::Next);
        assert_eq!(app.focus, Panel::Hosts);
        app.apply(Action::Down);
        app.apply(Action::Down);
        app.apply(Action::Up);
        assert_eq!(
            (app.scroll(Panel::Hosts), app.scroll(Panel::Agents)),
            (1, 0)
        );
        app.apply(Action::Help);
        assert!(app.help);
        app.apply(Action::Escape);
        assert!(!app.help);
    }
}
