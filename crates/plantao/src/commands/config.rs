use plantao_config::{EXAMPLE_CONFIG, EXAMPLE_PIPELINE};

pub fn example(pipeline: bool) {
    print!(
        "{}",
        if pipeline {
            EXAMPLE_PIPELINE
        } else {
            EXAMPLE_CONFIG
        }
    );
}
