//! `explain --mapping M --input R.json [--field F]`: what a mapping does with one record, field by
//! field, from the same evaluation as the function's (an Avro record too, `--records-format avro`).

use std::io::{self, Write};
use std::path::Path;

use super::error::CliError;
use super::exit::Outcome;
use super::validate::Format;

/// `lambda-stream explain`: one record through the mapping, step by step.
pub fn explain(
    mapping: &Path,
    input: &Path,
    field: Option<&str>,
    format: Format,
    records: &super::formats::LineFormat,
) -> Result<Outcome, CliError> {
    let (_, plan) = super::source::load(mapping)?;
    let text = super::process::read_input(input, "a record")?;
    // A file saved with a final newline (or a BOM) holds the same record.
    let value = records.value_of(text.trim_ascii_end()).map_err(CliError::Usage)?;
    let schemas = records.batch_schemas([value.as_slice()])?;
    let mut explanation = schemas.explain(&plan, records.format, &value, None);
    if let Some(target) = field {
        explanation = explanation.only(target);
        if explanation.fields.is_empty() {
            return Err(CliError::Usage(format!("the mapping has no target `{target}`")));
        }
    }
    let mut out = io::stdout().lock();
    match format {
        Format::Text => out.write_all(explanation.render().as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &explanation).expect("an explanation serialises");
            out.write_all(b"\n")?;
        }
    }
    Ok(Outcome::Done)
}
