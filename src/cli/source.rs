//! Reading the mapping a command names: a file, or in the full build an S3 object
//! (`s3://bucket/key[?versionId=…]`), so a published mapping can be checked, tried and compared
//! where it lives.

use std::path::Path;

use super::error::CliError;
use crate::plan::{self, LoadError, Plan};
use crate::spec::MappingSpec;

/// The text of the mapping at `path` (a file path or an `s3://` location).
pub fn read_text(path: &Path) -> Result<String, String> {
    let shown = path.to_string_lossy();
    if shown.starts_with("s3://") {
        #[cfg(feature = "kafka")]
        {
            let location = crate::mapping_source::Location::parse(&shown).map_err(|e| e.to_string())?;
            return crate::mapping_source::read_text_blocking(&location).map_err(|e| e.to_string());
        }
        #[cfg(not(feature = "kafka"))]
        return Err("s3:// mappings are read by the full build (this is the mapping-tools build); copy the object with `aws s3 cp` first".into());
    }
    crate::limits::read_text_bounded(path, crate::limits::MAX_MAPPING_BYTES, "a mapping").map_err(|e| e.to_string())
}

/// The mapping at `path`, parsed and compiled (lookup files next to a mapping file; an S3
/// mapping's from the working directory).
pub fn load(path: &Path) -> Result<(MappingSpec, Plan), CliError> {
    if !path.to_string_lossy().starts_with("s3://") {
        return Ok(plan::load_file(path)?);
    }
    let shown = path.to_string_lossy().into_owned();
    let text =
        read_text(path).map_err(|why| CliError::Read { path: shown.clone(), source: std::io::Error::other(why) })?;
    plan::load_str(&text).map_err(|diagnostics| CliError::Mapping(LoadError::Invalid { path: shown, diagnostics }))
}
