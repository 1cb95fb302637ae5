//! The trace sampler from `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, with the names
//! and defaults of the OpenTelemetry SDK environment variable specification.

use opentelemetry_sdk::trace::Sampler;

/// Builds the sampler. Unset means `parentbased_always_on`; a ratio sampler without an
/// argument samples everything (ratio 1.0).
pub(crate) fn parse(name: Option<&str>, argument: Option<&str>) -> Result<Sampler, String> {
    let name = name.map(str::trim).filter(|name| !name.is_empty());
    let Some(name) = name else {
        return Ok(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    };
    let sampler = match name {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio(argument)?),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio(argument)?)))
        }
        other => {
            return Err(format!(
                "OTEL_TRACES_SAMPLER={other:?} is not supported: use always_on, always_off, \
                 traceidratio, parentbased_always_on, parentbased_always_off or \
                 parentbased_traceidratio"
            ));
        }
    };
    Ok(sampler)
}

fn ratio(argument: Option<&str>) -> Result<f64, String> {
    let Some(text) = argument.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(1.0);
    };
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!(
            "OTEL_TRACES_SAMPLER_ARG={text:?} is not a sampling ratio: use a number from 0 to 1, \
             such as 0.25"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(name: Option<&str>, argument: Option<&str>) -> String {
        format!("{:?}", parse(name, argument).unwrap())
    }

    #[test]
    fn unset_is_parent_based_always_on() {
        assert_eq!(describe(None, None), "ParentBased(AlwaysOn)");
        assert_eq!(describe(Some(" "), None), "ParentBased(AlwaysOn)");
    }

    #[test]
    fn named_samplers() {
        assert_eq!(describe(Some("always_off"), None), "AlwaysOff");
        assert_eq!(describe(Some("always_on"), None), "AlwaysOn");
        assert_eq!(
            describe(Some("parentbased_always_off"), None),
            "ParentBased(AlwaysOff)"
        );
    }

    #[test]
    fn ratio_samplers_take_the_argument() {
        assert_eq!(
            describe(Some("traceidratio"), Some("0.25")),
            "TraceIdRatioBased(0.25)"
        );
        assert_eq!(
            describe(Some("parentbased_traceidratio"), None),
            "ParentBased(TraceIdRatioBased(1.0))"
        );
    }

    #[test]
    fn unknown_sampler_is_rejected() {
        let error = parse(Some("jaeger_remote"), None).unwrap_err();
        assert!(error.contains("\"jaeger_remote\""), "{error}");
    }

    #[test]
    fn ratio_out_of_range_is_rejected() {
        let error = parse(Some("traceidratio"), Some("1.5")).unwrap_err();
        assert!(error.contains("\"1.5\""), "{error}");
        let error = parse(Some("traceidratio"), Some("half")).unwrap_err();
        assert!(error.contains("\"half\""), "{error}");
    }
}
