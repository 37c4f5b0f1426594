//! What the overview and the pipeline list add up from the days [`crate::api::local_days`]
//! reads for every pipeline at once.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use plantao_store::Summary;

/// Every pipeline's runs over the days `days` gives, added up.
pub fn added(days: &[(NaiveDate, BTreeMap<String, Summary>)]) -> BTreeMap<String, Summary> {
    let mut all: BTreeMap<String, Summary> = BTreeMap::new();
    for (_, day) in days {
        for (name, s) in day {
            all.entry(name.clone()).or_default().merge(s);
        }
    }
    all
}
