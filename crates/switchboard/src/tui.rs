//! The full-screen console client (ratatui): conversations on the left, messages in the
//! middle, who is in the room on the right, the input line at the bottom.

use std::collections::HashMap;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, List, ListItem, Paragraph, Wrap};
use ratatui::Frame;
use switchboard_client::console::{Action, Console, Conv};
use switchboard_proto::ServerMsg;

use crate::chat::{describe, sign_in, ChatArgs};

/// Lines kept per conversation on screen.
const SCROLLBACK: usize = 2_000;

struct Screen {
    console: Console,
    lines: HashMap<Option<Conv>, Vec<String>>,
    input: String,
    status: String,
}

impl Screen {
    fn push(&mut self, conv: Option<Conv>, line: String) {
        let buf = self.lines.entry(conv).or_default();
        buf.push(line);
        if buf.len() > SCROLLBACK {
            buf.drain(..buf.len() - SCROLLBACK);
        }
    }

    /// Files the lines of an event under the conversation they belong to.
    fn event(&mut self, msg: &ServerMsg) {
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

    fn draw(&self, f: &mut Frame) {
        let rows = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Min(3), Constraint::Length(3)])
            .split(f.area());
        let cols = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([
                Constraint::Length(22),
                Constraint::Min(20),
                Constraint::Length(20),
            ])
            .split(rows[0]);
        let convs: Vec<ListItem> = self
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
        f.render_widget(
            List::new(convs).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title("Rooms & people"),
            ),
            cols[0],
        );
        let title = self
            .console
            .current
            .as_ref()
            .map_or("Switchboard".to_string(), |c| {
                let topic = match c {
                    Conv::Room(_) => self
                        .console
                        .convs
                        .get(c)
                        .and_then(|s| s.topic.clone())
                        .map(|t| format!(" - {t}"))
                        .unwrap_or_default(),
                    Conv::Dm(_) => String::new(),
                };
                format!("{}{topic}", c.label())
            });
        let mut shown: Vec<Line> = Vec::new();
        for key in [None, self.console.current.clone()] {
            if key.is_none() && self.console.current.is_some() {
                continue;
            }
            if let Some(buf) = self.lines.get(&key) {
                shown.extend(buf.iter().map(|l| Line::from(l.as_str())));
            }
        }
        let height = cols[1].height.saturating_sub(2) as usize;
        let skip = shown.len().saturating_sub(height);
        let body: Vec<Line> = shown.into_iter().skip(skip).collect();
        f.render_widget(
            Paragraph::new(body)
                .wrap(Wrap { trim: false })
                .block(Block::default().borders(Borders::ALL).title(title)),
            cols[1],
        );
        let members: Vec<ListItem> = match &self.console.current {
            Some(c @ Conv::Room(_)) => self
                .console
                .convs
                .get(c)
                .map(|s| {
                    s.members
                        .iter()
                        .map(|m| ListItem::new(m.as_str()))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        f.render_widget(
            List::new(members).block(Block::default().borders(Borders::ALL).title("Online here")),
            cols[2],
        );
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
}

pub async fn run(args: ChatArgs) -> anyhow::Result<i32> {
    let mut console = Console::new();
    let (mut client, lines) = match sign_in(&args, &mut console).await {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("! {}", describe(&e));
            return Ok(1);
        }
    };
    let mut screen = Screen {
        console,
        lines: HashMap::new(),
        input: String::new(),
        status: format!("{} - Enter sends, Tab switches, Esc quits", args.name),
    };
    for l in lines {
        screen.push(None, l);
    }
    // Terminal events come from a blocking thread through a bounded channel.
    let (key_tx, mut key_rx) = tokio::sync::mpsc::channel::<Event>(64);
    std::thread::spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            if key_tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });
    let mut terminal = ratatui::init();
    let code = loop {
        terminal.draw(|f| screen.draw(f))?;
        tokio::select! {
            ev = key_rx.recv() => {
                let Some(Event::Key(KeyEvent { code, modifiers, kind: KeyEventKind::Press, .. })) = ev else { continue };
                match (code, modifiers) {
                    (KeyCode::Esc, _) | (KeyCode::Char('c'), KeyModifiers::CONTROL) => {
                        let _ = client.bye().await;
                        break 0;
                    }
                    (KeyCode::Tab, _) => {
                        let keys: Vec<Conv> = screen.console.convs.keys().cloned().collect();
                        if !keys.is_empty() {
                            let pos = screen.console.current.as_ref().and_then(|c| keys.iter().position(|k| k == c));
                            let next = keys[pos.map_or(0, |p| (p + 1) % keys.len())].clone();
                            if let Some(st) = screen.console.convs.get_mut(&next) { st.unread = 0; }
                            screen.console.current = Some(next);
                        }
                    }
                    (KeyCode::Backspace, _) => { screen.input.pop(); }
                    (KeyCode::Enter, _) => {
                        let line = std::mem::take(&mut screen.input);
                        match screen.console.input(&line) {
                            Action::Send(msg) => {
                                if let Err(e) = client.send(&msg).await {
                                    screen.push(None, format!("! {}", describe(&e)));
                                }
                            }
                            Action::Print(lines) => {
                                let conv = screen.console.current.clone();
                                for l in lines { screen.push(conv.clone(), l); }
                            }
                            Action::Quit => {
                                let _ = client.bye().await;
                                break 0;
                            }
                        }
                    }
                    (KeyCode::Char(c), _) => screen.input.push(c),
                    _ => {}
                }
            }
            msg = client.recv() => match msg {
                Ok(Some(msg)) => {
                    let shutdown = matches!(msg, ServerMsg::Shutdown { .. });
                    screen.event(&msg);
                    if shutdown && !args.reconnects() {
                        terminal.draw(|f| screen.draw(f))?;
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        break 0;
                    }
                }
                Ok(None) | Err(_) => {
                    if !args.reconnects() {
                        break 1;
                    }
                    screen.status = "reconnecting...".into();
                    terminal.draw(|f| screen.draw(f))?;
                    match reconnect_quiet(&args, &mut screen).await {
                        Some(c) => {
                            client = c;
                            screen.status = format!("{} - reconnected", args.name);
                        }
                        None => break 1,
                    }
                }
            }
        }
    };
    ratatui::restore();
    Ok(code)
}

async fn reconnect_quiet(
    args: &ChatArgs,
    screen: &mut Screen,
) -> Option<switchboard_client::Client> {
    // The current node just went away: start with the next one.
    screen.console.server = (screen.console.server + 1) % args.server.len().max(1);
    let mut delay = Duration::from_millis(250);
    for _ in 0..40 {
        tokio::time::sleep(delay).await;
        if let Ok((client, lines)) = sign_in(args, &mut screen.console).await {
            let conv = screen.console.current.clone();
            for l in lines {
                screen.push(conv.clone(), l);
            }
            return Some(client);
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    None
}
