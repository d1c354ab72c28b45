//! Reading the mapping a command names: a file, or in the full build an S3 object
//! (`s3://bucket/key[?versionId=…]`), so a published mapping can be checked, tried and compared
//! where it lives.

use std::path::Path;

use super::error::{CliError, MappingReadError};
use crate::mapping_file::{self, LoadError};
use crate::plan::Plan;
use crate::spec::MappingSpec;

/// The text of the mapping at `path` (a file path or an `s3://` location).
pub fn read_text(path: &Path) -> Result<String, MappingReadError> {
    let shown = path.to_string_lossy();
    if shown.starts_with("s3://") {
        #[cfg(feature = "kafka")]
        {
            let location = crate::mapping_source::Location::parse(&shown)?;
            return Ok(crate::mapping_source::read_text_blocking(&location)?);
        }
        #[cfg(not(feature = "kafka"))]
        return Err(MappingReadError::NeedsFullBuild);
    }
    Ok(crate::limits::read_text_bounded(path, crate::limits::MAX_MAPPING_BYTES, "a mapping")?)
}

/// The mapping at `path`, parsed and compiled (lookup files next to a mapping file; an S3
/// mapping's from the working directory).
pub fn load(path: &Path) -> Result<(MappingSpec, Plan), CliError> {
    if !path.to_string_lossy().starts_with("s3://") {
        return Ok(mapping_file::load_file(path)?);
    }
    let shown = path.to_string_lossy().into_owned();
    let text = read_text(path).map_err(|source| CliError::ReadMapping { path: shown.clone(), source })?;
    mapping_file::load_str(&text)
        .map_err(|diagnostics| CliError::Mapping(LoadError::Invalid { path: shown, diagnostics }))
}
