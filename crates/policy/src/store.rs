//! [`PolicyStore`]: the policy set in force, swapped whole on reload. Readers take an `Arc` and
//! decide on it undisturbed; a refused reload leaves the last good set in place.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use crate::error::PolicyError;
use crate::load::{load, LoadedPolicies};
use crate::set::PolicySet;

/// Holds the current policy set.
#[derive(Debug)]
pub struct PolicyStore {
    current: RwLock<Arc<PolicySet>>,
}

impl PolicyStore {
    /// A store holding `set`.
    pub fn new(set: PolicySet) -> Self {
        Self {
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// The set in force. Cheap: one `Arc` clone under a read lock held for no longer than that.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `set` in force; returns the set it replaces.
    pub fn replace(&self, set: PolicySet) -> Arc<PolicySet> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, Arc::new(set))
    }

    /// Loads `path` and puts it in force; on any error the current set stays and the error says
    /// why (for the log and the reload-failure metric). Returns what was loaded, without the set.
    pub fn reload(&self, path: &Path) -> Result<Reloaded, PolicyError> {
        let LoadedPolicies {
            set,
            files,
            warnings,
        } = load(path)?;
        let policies = set.len();
        self.replace(set);
        Ok(Reloaded {
            policies,
            files: files.len(),
            warnings: warnings.iter().map(ToString::to_string).collect(),
        })
    }
}

/// What a successful reload put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// How many policies.
    pub policies: usize,
    /// From how many files.
    pub files: usize,
    /// Validator warnings, one line each.
    pub warnings: Vec<String>,
}
