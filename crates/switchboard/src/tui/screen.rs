//! The full-screen client's state and how it is drawn, apart from the terminal: what was
//! said per conversation, who is online, the input line. The terminal loop (tui.rs) feeds it
//! keys and server messages; the tests draw it on ratatui's `TestBackend`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, List, ListItem, Paragraph};
use ratatui::Frame;
use switchboard_client::console::{Action, Console, Conv};
use switchboard_proto::server::PresenceEvent;
use switchboard_proto::{ClientMsg, ServerMsg};

/// Lines kept per conversation on screen.
const SCROLLBACK: usize = 2_000;

/// The `ref` of the `who` requests the screen makes itself to keep the online list current;
/// their replies update the list without printing anything.
pub const ONLINE_REF: &str = "online";

/// What the terminal loop should do after a key.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Nothing to send (the screen changed, or not).
    Stay,
    /// Send this to the node.
    Send(ClientMsg),
    /// Say goodbye and exit.
    Quit,
}

/// Everything the full-screen client shows.
pub struct Screen {
    /// The command language and the conversations' state, shared with plain mode.
    pub console: Console,
    /// Lines per conversation; `None` holds what came before any conversation was current.
    lines: HashMap<Option<Conv>, Vec<String>>,
    /// The line being typed.
    pub input: String,
    /// The title of the input box: who you are and how to use the screen.
    pub status: String,
    /// Who is online anywhere in the cluster: the last `who` reply, plus those seen arriving
    /// in a room since. A `who` is asked again when someone leaves a room (they may have gone
    /// offline or only left the room: presence does not say) and every so often, since
    /// people who share no room with this user send no presence events at all.
    online: BTreeSet<String>,
    /// Away messages of people online, by name.
    away: BTreeMap<String, String>,
    /// Someone left a room: the online list needs asking again.
    refresh_due: bool,
}

impl Screen {
    /// A screen for a signed-in console, showing `notices` (the sign-in lines) first.
    pub fn new(console: Console, status: String, notices: Vec<String>) -> Screen {
        let mut screen = Screen {
            console,
            lines: HashMap::new(),
            input: String::new(),
            status,
            online: BTreeSet::new(),
            away: BTreeMap::new(),
            refresh_due: true,
        };
        screen.notice(notices);
        screen
    }

    /// Shows lines in the current conversation (or before any).
    pub fn notice(&mut self, lines: Vec<String>) {
        let conv = self.console.current.clone();
        for l in lines {
            self.push(conv.clone(), l);
        }
    }

    fn push(&mut self, conv: Option<Conv>, line: String) {
        let buf = self.lines.entry(conv).or_default();
        buf.push(line);
        if buf.len() > SCROLLBACK {
            buf.drain(..buf.len() - SCROLLBACK);
        }
    }

    /// The request that refreshes the online list, if one is due; clears the flag.
    pub fn take_refresh(&mut self) -> Option<ClientMsg> {
        std::mem::take(&mut self.refresh_due).then(online_request)
    }

    /// Asks for the online list at the next chance (after a reconnect, on a timer).
    pub fn want_refresh(&mut self) {
        self.refresh_due = true;
    }

    /// Takes in one message from the node.
    pub fn event(&mut self, msg: &ServerMsg) {
        if self.track_online(msg) {
            return;
        }
        let conv = match msg {
            ServerMsg::Message(m) => Some(self.console.conv_of(m)),
            _ => None,
        };
        let lines = self.console.event(msg);
        let conv = conv.or_else(|| self.console.current.clone());
        for l in lines {
            self.push(conv.clone(), l);
        }
    }

    /// Updates the online list; true when the message was the screen's own and is done.
    fn track_online(&mut self, msg: &ServerMsg) -> bool {
        match msg {
            ServerMsg::Who {
                room: None,
                users,
                away,
                reff,
            } => {
                self.online = users.iter().cloned().collect();
                self.away = away.clone();
                return reff.as_deref() == Some(ONLINE_REF);
            }
            ServerMsg::Error { reff, .. } => return reff.as_deref() == Some(ONLINE_REF),
            ServerMsg::Joined { members, .. } => self.online.extend(members.iter().cloned()),
            ServerMsg::Presence { name, event, .. } => match event {
                PresenceEvent::Join => {
                    self.online.insert(name.clone());
                }
                PresenceEvent::Leave => self.refresh_due = true,
            },
            ServerMsg::Away { name, message, .. } => match message {
                Some(m) => {
                    self.away.insert(name.clone(), m.clone());
                }
                None => {
                    self.away.remove(name);
                }
            },
            _ => {}
        }
        false
    }

    /// Takes in one key: edits the input line, switches conversation (Tab), or runs the line
    /// (Enter) through the console's command language.
    pub fn key(&mut self, key: KeyEvent) -> Step {
        if key.kind != KeyEventKind::Press {
            return Step::Stay;
        }
        match (key.code, key.modifiers) {
            (KeyCode::Esc, _) | (KeyCode::Char('c'), KeyModifiers::CONTROL) => Step::Quit,
            (KeyCode::Tab, _) => {
                self.next_conversation();
                Step::Stay
            }
            (KeyCode::Backspace, _) => {
                self.input.pop();
                Step::Stay
            }
            (KeyCode::Enter, _) => {
                let line = std::mem::take(&mut self.input);
                match self.console.input(&line) {
                    Action::Send(msg) => Step::Send(msg),
                    Action::Print(lines) => {
                        self.notice(lines);
                        Step::Stay
                    }
                    Action::Quit => Step::Quit,
                }
            }
            (KeyCode::Char(c), _) => {
                self.input.push(c);
                Step::Stay
            }
            _ => Step::Stay,
        }
    }

    fn next_conversation(&mut self) {
        let keys: Vec<Conv> = self.console.convs.keys().cloned().collect();
        if keys.is_empty() {
            return;
        }
        let current = self.console.current.as_ref();
        let pos = current.and_then(|c| keys.iter().position(|k| k == c));
        let next = keys[pos.map_or(0, |p| (p + 1) % keys.len())].clone();
        if let Some(st) = self.console.convs.get_mut(&next) {
            st.unread = 0;
        }
        self.console.current = Some(next);
    }

    /// Draws the whole screen: conversations on the left, messages in the middle, who is
    /// online on the right, the input line at the bottom.
    pub fn draw(&self, f: &mut Frame) {
        let rows = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Min(3), Constraint::Length(3)])
            .split(f.area());
        let cols = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([
                Constraint::Length(22),
                Constraint::Min(20),
                Constraint::Length(22),
            ])
            .split(rows[0]);
        self.draw_conversations(f, cols[0]);
        self.draw_messages(f, cols[1]);
        self.draw_online(f, cols[2]);
        f.render_widget(
            Paragraph::new(self.input.as_str()).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(self.status.as_str()),
            ),
            rows[1],
        );
        f.set_cursor_position((
            rows[1].x + 1 + self.input.chars().count() as u16,
            rows[1].y + 1,
        ));
    }

    fn draw_conversations(&self, f: &mut Frame, area: Rect) {
        let items: Vec<ListItem> = self
            .console
            .convs
            .iter()
            .map(|(c, st)| {
                let unread = if st.unread > 0 {
                    format!(" ({})", st.unread)
                } else {
                    String::new()
                };
                let item = ListItem::new(format!("{}{unread}", c.label()));
                if Some(c) == self.console.current.as_ref() {
                    item.style(Style::default().add_modifier(Modifier::REVERSED))
                } else {
                    item
                }
            })
            .collect();
        let block = Block::default()
            .borders(Borders::ALL)
            .title("Rooms & people");
        f.render_widget(List::new(items).block(block), area);
    }

    fn draw_messages(&self, f: &mut Frame, area: Rect) {
        let title = match &self.console.current {
            None => "Switchboard".to_string(),
            Some(c @ Conv::Room(_)) => {
                let topic = self.console.convs.get(c).and_then(|s| s.topic.as_deref());
                match topic {
                    Some(t) => format!("{} - {t}", c.label()),
                    None => c.label(),
                }
            }
            Some(c) => c.label(),
        };
        let shown = self.lines.get(&self.console.current);
        let shown = shown.map_or(&[][..], Vec::as_slice);
        // The newest rows that fit. Lines are wrapped here rather than by the widget, so that
        // counting rows from the bottom counts what is drawn: the newest line always shows.
        let (width, height) = (area.width.saturating_sub(2), area.height.saturating_sub(2));
        let mut rows: Vec<String> = Vec::new();
        for line in shown.iter().rev() {
            if rows.len() >= height as usize {
                break;
            }
            rows.extend(wrap(line, width as usize).into_iter().rev());
        }
        let skip = rows.len().saturating_sub(height as usize);
        let body: Vec<Line> = rows.into_iter().rev().skip(skip).map(Line::from).collect();
        let block = Block::default().borders(Borders::ALL).title(title);
        f.render_widget(Paragraph::new(body).block(block), area);
    }

    /// Who is online: the current room's members first, under the room's name, then
    /// everyone else online under "elsewhere"; away people are marked.
    fn draw_online(&self, f: &mut Frame, area: Rect) {
        let label = |name: &str| match self.away.contains_key(name) {
            true => ListItem::new(format!(" {name} (away)")),
            false => ListItem::new(format!(" {name}")),
        };
        let header =
            |text: String| ListItem::new(text).style(Style::default().add_modifier(Modifier::BOLD));
        let members = match &self.console.current {
            Some(c @ Conv::Room(_)) => self.console.convs.get(c).map(|s| &s.members),
            _ => None,
        };
        let mut items = Vec::new();
        let mut everyone = self.online.clone();
        if let (Some(members), Some(current)) = (members, &self.console.current) {
            items.push(header(current.label()));
            items.extend(members.iter().map(|m| label(m)));
            everyone.extend(members.iter().cloned());
            let others: Vec<&String> = self
                .online
                .iter()
                .filter(|n| !members.contains(n))
                .collect();
            if !others.is_empty() {
                items.push(header("elsewhere".into()));
                items.extend(others.into_iter().map(|n| label(n)));
            }
        } else {
            items.extend(self.online.iter().map(|n| label(n)));
        }
        let title = format!("Online ({})", everyone.len());
        let block = Block::default().borders(Borders::ALL).title(title);
        f.render_widget(List::new(items).block(block), area);
    }
}

/// Splits `line` into rows of at most `width` characters, at spaces where it can.
pub(super) fn wrap(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in line.split_inclusive(' ') {
        let mut word = word;
        // Break a word longer than a row; otherwise start a new row when it does not fit.
        while word.chars().count() > width {
            if !row.is_empty() {
                rows.push(std::mem::take(&mut row));
            }
            let cut = word
                .char_indices()
                .nth(width)
                .map_or(word.len(), |(i, _)| i);
            rows.push(word[..cut].to_string());
            word = &word[cut..];
        }
        if row.chars().count() + word.trim_end().chars().count() > width {
            rows.push(std::mem::take(&mut row));
        }
        row.push_str(word);
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows
}

/// The `who` request whose reply refreshes the online list.
pub fn online_request() -> ClientMsg {
    ClientMsg::Who {
        room: None,
        reff: Some(ONLINE_REF.to_string()),
    }
}
