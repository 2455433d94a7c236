//! `--json` output for scripts: one JSON object per line on stdout, flushed at once. Events
//! are objects with an `"event"` member naming them; a command that ends prints a final
//! summary object (`"event": "done"`, or the one result of a query). Human output stays the
//! default. Commands that stream events (`download`, `publish`, `subscribe`, `ls`) use
//! [`event`]; one-shot queries use [`emit`].

use std::io::Write;

use clap::Args;
use serde_json::{Map, Value};

/// The `--json` flag, to flatten into a command's arguments.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct JsonFlag {
    /// Print JSON for scripts: one object per line on stdout (events, then a summary).
    #[arg(long)]
    pub json: bool,
}

/// Print `value` as one line on stdout and flush it, so a script reading lines sees it now.
pub fn emit(value: &Value) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Print the event `name` with `fields` (an object; other values are put under `"value"`).
pub fn event(name: &str, fields: Value) -> std::io::Result<()> {
    let mut object = Map::new();
    object.insert("event".into(), Value::from(name));
    match fields {
        Value::Object(map) => object.extend(map),
        Value::Null => {}
        other => {
            object.insert("value".into(), other);
        }
    }
    emit(&Value::Object(object))
}
