//! `fleet check`: which targets' schemas differ from what the chain gives at their version.
