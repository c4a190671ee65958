//! What serde cannot check in a world: appids that are unique and known where they are named. Indexed, so a world
//! of thousands of generated mini programs starts at once.

use std::collections::HashSet;

use super::invalid::Invalid;
use super::world::World;

impl World {
    /// Checks what serde cannot: unique appids, plugins owned by known accounts, applications between known parties,
    /// usable platform keys, authorisations of known platforms by known mini programs.
    pub fn validate(&self) -> Result<(), Invalid> {
        let known: HashSet<&str> = self.accounts.iter().map(|a| a.appid.as_str()).collect();
        let mut seen = HashSet::with_capacity(known.len());
        for a in &self.accounts {
            if !seen.insert(a.appid.as_str()) {
                return Err(Invalid::World(format!("account {} appears twice", a.appid)));
            }
            if let Some(p) = &a.plugin {
                if !known.contains(p.owner.as_str()) {
                    return Err(Invalid::World(format!("plugin {} is owned by unknown account {}", a.appid, p.owner)));
                }
            }
        }
        self.validate_applications(&known)?;
        let mut components = HashSet::new();
        for c in &self.components {
            if !components.insert(c.appid.as_str()) || known.contains(c.appid.as_str()) {
                return Err(Invalid::World(format!("component {} appears twice", c.appid)));
            }
            c.validate()?;
        }
        self.validate_authorizations(&components)?;
        self.api_security.validate(self.api_security_keys())
    }

    fn validate_applications(&self, known: &HashSet<&str>) -> Result<(), Invalid> {
        let plugins: HashSet<&str> =
            self.accounts.iter().filter(|a| a.plugin.is_some()).map(|a| a.appid.as_str()).collect();
        let links = self.applications.iter().map(|a| (a.plugin.as_str(), a.applicant.as_str()));
        match first_broken(links, &plugins, known) {
            None => Ok(()),
            Some(Broken::First(plugin)) => Err(format!("application for unknown plugin {plugin}")),
            Some(Broken::Second(applicant)) => Err(format!("application by unknown account {applicant}")),
            Some(Broken::Twice(plugin, applicant)) => Err(format!("{applicant} applied for {plugin} twice")),
        }
        .map_err(Invalid::World)
    }

    fn validate_authorizations(&self, components: &HashSet<&str>) -> Result<(), Invalid> {
        let programs: HashSet<&str> =
            self.accounts.iter().filter(|a| a.plugin.is_none()).map(|a| a.appid.as_str()).collect();
        let links = self.authorizations.iter().map(|a| (a.component.as_str(), a.authorizer.as_str()));
        match first_broken(links, components, &programs) {
            None => Ok(()),
            Some(Broken::First(component)) => Err(format!("authorisation of unknown platform {component}")),
            Some(Broken::Second(authorizer)) => Err(format!("authorisation by {authorizer}, not a mini program")),
            Some(Broken::Twice(component, authorizer)) => Err(format!("{authorizer} authorised {component} twice")),
        }
        .map_err(Invalid::World)
    }
}

/// How a list of links between two appids (an application, an authorisation) goes wrong first.
enum Broken<'a> {
    /// The first end is not among those it may be.
    First(&'a str),
    /// The second end is not among those it may be.
    Second(&'a str),
    /// The same link again.
    Twice(&'a str, &'a str),
}

fn first_broken<'a>(
    links: impl Iterator<Item = (&'a str, &'a str)>,
    firsts: &HashSet<&str>,
    seconds: &HashSet<&str>,
) -> Option<Broken<'a>> {
    let mut seen = HashSet::new();
    for (first, second) in links {
        if !firsts.contains(first) {
            return Some(Broken::First(first));
        }
        if !seconds.contains(second) {
            return Some(Broken::Second(second));
        }
        if !seen.insert((first, second)) {
            return Some(Broken::Twice(first, second));
        }
    }
    None
}
