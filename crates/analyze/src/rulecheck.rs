//! What a Falco rule's own condition says about an alert: evaluated over the alert's fields,
//! with the rule as the upstream rules file (built in) or the user's own rules file (`--rules`)
//! writes it. When the current rule would not fire, the macro, list or exception that excludes
//! the alert is evidence that the alert came from an older or differently tuned rule.

/// Three-valued truth: a field the alert does not carry is unknown, never false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tri {
    True,
    False,
    Unknown,
}

/// Which rules file the condition came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    /// The upstream rule files built into the binary (kb/upstream).
    Upstream,
    /// A rules file the user gave with `--rules`.
    User { file: String },
}

/// What kind of construct excluded the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExclusionKind {
    Macro,
    List,
    Exception,
    Condition,
}

/// One reason the rule would not fire: e.g. list `falco_privileged_images` holds the alert's
/// `container.image.repository`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    pub kind: ExclusionKind,
    /// The macro, list or exception name (for `Condition`, the comparison as written).
    pub name: String,
    pub field: Option<String>,
    pub value: Option<String>,
}

/// The outcome of evaluating one rule's condition over one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCheck {
    pub origin: RuleOrigin,
    /// The rule's name in that file.
    pub rule: String,
    /// Would the rule, as that file writes it, fire on this alert's fields?
    pub fires: Tri,
    /// When `fires` is `False`: what excluded the alert (outermost first).
    pub excluded_by: Vec<Exclusion>,
}
