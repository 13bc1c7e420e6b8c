// First run: name this instance and choose the admin password.

import { api, type Api } from "../api";
import { h, field } from "../dom";
import { syncAdminRemaining } from "../components/adminLock";
import { errorText } from "../components/errorText";

/** How strong a password looks, in words. */
export function passwordStrength(password: string): "too short" | "weak" | "fair" | "strong" {
  if (password.length < 10) return "too short";
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((r) => r.test(password)).length;
  const score = classes + (password.length >= 16 ? 2 : password.length >= 12 ? 1 : 0);
  return score >= 5 ? "strong" : score >= 3 ? "fair" : "weak";
}

/** Checks the first-run form; returns the problem in words, or null. */
export function validateFirstRun(name: string, password: string, confirm: string): string | null {
  if (!name.trim()) return "Give this instance a name, e.g. “Library laptop”.";
  if (name.trim().length > 64) return "The name can be at most 64 characters.";
  if (password.length < 10) return "The admin password needs at least 10 characters.";
  if (password !== confirm) return "The two passwords are not the same.";
  return null;
}

export function FirstRunView(onCreated: () => void, client: Api = api): HTMLElement {
  const name = h("input", { type: "text", autocomplete: "off", placeholder: "e.g. Library laptop" });
  const password = h("input", { type: "password", autocomplete: "new-password" });
  const confirm = h("input", { type: "password", autocomplete: "new-password" });
  const strength = h("small", { class: "hint", "aria-live": "polite" }, "At least 10 characters.");
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create this instance");
  password.addEventListener("input", () => {
    const rating = passwordStrength(password.value);
    strength.textContent = rating === "weak" ? "Strength: weak. Someone who gets hold of this computer could guess it: a longer phrase of several words is stronger." : `Strength: ${rating}`;
  });
  // A weak password is taken only once the person was told and pressed again.
  let weakAccepted: string | null = null;
  const form = h(
    "form",
    {
      class: "card",
      "aria-label": "First run",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const problem = validateFirstRun(name.value, password.value, confirm.value);
        error.textContent = problem ?? "";
        if (problem) return;
        if (passwordStrength(password.value) === "weak" && weakAccepted !== password.value) {
          weakAccepted = password.value;
          error.textContent = "This password is weak. Choose a longer one, or press “Create this instance” again to use it anyway.";
          return;
        }
        submit.disabled = true;
        submit.textContent = "Creating… (this takes a few seconds)";
        try {
          await client.createInstance(name.value.trim(), password.value);
          syncAdminRemaining(5 * 60 * 1000);
          onCreated();
        } catch (e) {
          error.textContent = errorText(e);
          submit.disabled = false;
          submit.textContent = "Create this instance";
        }
      },
    },
    h("h1", {}, "Welcome to DAN"),
    h(
      "p",
      {},
      "This app hosts one instance of a Distributed Administration Network on this computer. A network is run together by at least three people, each with their own instance and password, so that no single person can change its records or its rules alone. You will be this instance's admin: nobody else can administer it, and you cannot administer anyone else's.",
    ),
    h("p", { class: "banner", role: "note", "aria-label": "Password warning" }, "Nobody can reset the admin password: not the other admins, not the makers of DAN. Write it down and keep it safe. Once your network runs, make a backup (Settings → Backup)."),
    field("Instance name", name),
    field("Admin password", password),
    strength,
    field("Repeat the admin password", confirm),
    error,
    h("div", { class: "actions" }, submit),
  );
  // Typing goes to the first field straight away, unless the person was
  // quicker and already clicked into one: the focus never moves under
  // their keystrokes (a password half in the name field).
  requestAnimationFrame(() => {
    if (!form.contains(document.activeElement)) name.focus();
  });
  return h("main", { class: "centered" }, form);
}

export function UnlockView(onUnlocked: () => void, client: Api = api): HTMLElement {
  const password = h("input", { type: "password", autocomplete: "current-password" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    {
      class: "card",
      "aria-label": "Unlock",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        try {
          await client.unlock(password.value);
          onUnlocked();
        } catch (e) {
          error.textContent = errorText(e);
        }
      },
    },
    h("h1", {}, "Unlock this instance"),
    h("p", {}, "Enter the admin password to start this instance."),
    field("Admin password", password),
    error,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Unlock")),
  );
  return h("main", { class: "centered" }, form);
}
