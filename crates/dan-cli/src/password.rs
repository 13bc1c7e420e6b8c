//! Where the CLI gets the admin password: `DAN_ADMIN_PASSWORD`, or a prompt
//! on the terminal.

use std::io::IsTerminal;

use anyhow::{Context, bail};

/// The environment variable holding the admin password for scripts.
pub(crate) const PASSWORD_ENV: &str = "DAN_ADMIN_PASSWORD";

/// The password from the environment, if set.
pub(crate) fn password_from_env() -> Option<String> {
    std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty())
}

/// Asks for the admin password on the terminal.
pub(crate) fn prompt_admin_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("the admin password is needed: set {PASSWORD_ENV} or run in a terminal");
    }
    rpassword::prompt_password("Admin password: ").context("reading the password")
}

/// The admin password for an admin-only command.
pub(crate) fn admin_password() -> anyhow::Result<String> {
    match password_from_env() {
        Some(password) => Ok(password),
        None => prompt_admin_password(),
    }
}

/// A new admin password: from the environment, or asked twice.
pub(crate) fn new_password() -> anyhow::Result<String> {
    match password_from_env() {
        Some(password) => Ok(password),
        None => ask_twice(PASSWORD_ENV),
    }
}

/// A replacement admin password: `DAN_NEW_ADMIN_PASSWORD`, or asked twice.
pub(crate) fn replacement_password() -> anyhow::Result<String> {
    match std::env::var(NEW_PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty())
    {
        Some(password) => Ok(password),
        None => ask_twice(NEW_PASSWORD_ENV),
    }
}

/// The environment variable holding a replacement admin password.
const NEW_PASSWORD_ENV: &str = "DAN_NEW_ADMIN_PASSWORD";

fn ask_twice(variable: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("choose an admin password: set {variable} or run in a terminal");
    }
    let first = rpassword::prompt_password("Choose an admin password (at least 10 characters): ")
        .context("reading the password")?;
    let second = rpassword::prompt_password("Repeat it: ").context("reading the password")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}
