//! Fuzz the rule parser: any text is a rule (or a rule file). Parsing must never panic, and
//! whatever parses must print to text that parses back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(rule) = khien_rules::parse_rule(text) {
        let printed = rule.to_string();
        let again = khien_rules::parse_rule(&printed)
            .unwrap_or_else(|d| panic!("canonical form does not parse: {d}\n{printed}"));
        assert_eq!(again, rule, "{printed}");
    }
    let mut rs = khien_rules::Ruleset::new(khien_rules::LoadOptions::default());
    rs.add_file("fuzz.rules", text);
});
