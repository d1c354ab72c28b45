//! Code lists of the standard validators, embedded from the maintained tables in `data/codes/`
//! (each file's header names its source, release and the day it was taken) and turned into bit
//! sets while the program is compiled: a malformed table fails the build, and a lookup is one bit
//! test with no allocation and no start-up work.

/// Every assigned ISO 3166-1 alpha-2 code (the tz database's `iso3166.tab`).
pub static COUNTRIES: CodeSet<{ 26usize.pow(2).div_ceil(64) }> =
    CodeSet::parse(include_bytes!("../../../../data/codes/iso3166.tab"), 2);

/// Every alphabetic code of ISO 4217 list one: current currencies and funds.
pub static CURRENCIES: CodeSet<{ 26usize.pow(3).div_ceil(64) }> =
    CodeSet::parse(include_bytes!("../../../../data/codes/iso4217.tsv"), 3);

/// Codes of a fixed number of upper-case ASCII letters, one bit each (the code read in base 26).
pub struct CodeSet<const WORDS: usize> {
    bits: [u64; WORDS],
    letters: usize,
}

impl<const WORDS: usize> CodeSet<WORDS> {
    /// Reads the first column of a tab-separated table: every line that is neither empty nor a
    /// `#` comment starts with a code of `letters` upper-case letters and a tab. Panics (at
    /// compile time, for the statics above) on anything else, and on a code listed twice.
    const fn parse(table: &[u8], letters: usize) -> Self {
        assert!(26usize.pow(letters as u32) <= WORDS * 64, "the set is too small for codes of this length");
        let mut bits = [0u64; WORDS];
        let mut i = 0;
        while i < table.len() {
            if table[i] != b'#' && table[i] != b'\n' {
                let mut index = 0;
                let mut k = 0;
                while k < letters {
                    let c = table[i + k];
                    assert!(c.is_ascii_uppercase(), "a code table line does not start with an upper-case code");
                    index = index * 26 + (c - b'A') as usize;
                    k += 1;
                }
                assert!(table[i + letters] == b'\t', "a code in a code table is not followed by a tab");
                assert!(bits[index / 64] & (1 << (index % 64)) == 0, "a code table lists a code twice");
                bits[index / 64] |= 1 << (index % 64);
            }
            while i < table.len() && table[i] != b'\n' {
                i += 1;
            }
            i += 1;
        }
        CodeSet { bits, letters }
    }

    /// Whether `code` is in the set: exactly as listed, upper case.
    pub fn contains(&self, code: &str) -> bool {
        let b = code.as_bytes();
        if b.len() != self.letters || !b.iter().all(u8::is_ascii_uppercase) {
            return false;
        }
        let index = b.iter().fold(0, |acc, &c| acc * 26 + usize::from(c - b'A'));
        self.bits[index / 64] >> (index % 64) & 1 == 1
    }

    /// How many codes the set holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_the_assigned_iso_3166_codes() {
        assert_eq!(COUNTRIES.len(), 249, "ISO 3166-1 assigns 249 alpha-2 codes");
        for code in ["BR", "US", "GB", "DE", "AQ", "SS", "CW", "BQ", "SX", "UM"] {
            assert!(COUNTRIES.contains(code), "{code}");
        }
        // XK (Kosovo) is user-assigned, UK exceptionally reserved, AN deleted in 2010: none is an
        // assigned code.
        for code in ["XK", "UK", "AN", "EU", "ZZ", "br", "Br", "BRA", "B", "", "É"] {
            assert!(!COUNTRIES.contains(code), "{code}");
        }
    }

    #[test]
    fn currencies_are_iso_4217_list_one() {
        assert_eq!(CURRENCIES.len(), 178);
        for code in ["BRL", "USD", "EUR", "JPY", "CHE", "XAU", "XCG", "ZWG", "SLE", "VED"] {
            assert!(CURRENCIES.contains(code), "{code}");
        }
        // Withdrawn: the Deutsche Mark, the Croatian kuna (2023), the Netherlands Antillean
        // guilder (2025), the old leone; never codes: lower case, bitcoin, two letters.
        for code in ["DEM", "HRK", "ANG", "SLL", "FRF", "brl", "BTC", "US", "USDT", ""] {
            assert!(!CURRENCIES.contains(code), "{code}");
        }
    }

    #[test]
    fn a_table_is_read_by_its_first_column_and_comments_are_skipped() {
        let set: CodeSet<11> = CodeSet::parse(b"# header\n#\nAB\tfirst\n\nZZ\tlast", 2);
        assert_eq!(set.len(), 2);
        assert!(set.contains("AB") && set.contains("ZZ") && !set.contains("AA"));
    }

    #[test]
    #[should_panic(expected = "twice")]
    fn a_code_listed_twice_is_refused() {
        let _: CodeSet<11> = CodeSet::parse(b"AB\tx\nAB\ty\n", 2);
    }
}
