// The admin lock: admin actions ask for the admin password once, then stay
// unlocked for a few visible minutes.

import { api, isApiError, type Api } from "../api";
import { h, field } from "../dom";
import { errorText } from "./errorText";

let unlockedUntil = 0;
const listeners = new Set<() => void>();

/** Milliseconds left before admin actions need the password again. */
export function adminRemaining(): number {
  return Math.max(0, unlockedUntil - Date.now());
}

/** Called whenever the lock opens or closes. */
export function onAdminChange(listener: () => void): void {
  listeners.add(listener);
}

/** Stops calling `listener`. */
export function offAdminChange(listener: () => void): void {
  listeners.delete(listener);
}

function setUnlocked(remainingMs: number): void {
  unlockedUntil = Date.now() + remainingMs;
  listeners.forEach((l) => l());
}

/** Locks admin actions now. */
export async function lockAdmin(client: Api = api): Promise<void> {
  await client.adminLock();
  setUnlocked(0);
}

/** Asks for the admin password in a dialog; resolves when unlocked, or
 * rejects when the user cancels. */
export function askAdminPassword(client: Api = api): Promise<void> {
  return new Promise((resolve, reject) => {
    const password = h("input", { type: "password", autocomplete: "current-password" });
    const error = h("p", { class: "error", role: "alert" });
    const dialog = h("dialog", { class: "admin-dialog", "aria-label": "Admin password" });
    // Escape closes a dialog by itself: the action is then cancelled too,
    // not left waiting for ever.
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(false);
    });
    const close = (ok: boolean) => {
      if (typeof dialog.close === "function") dialog.close();
      dialog.remove();
      if (ok) resolve();
      else reject({ code: "cancelled", message: "Cancelled." });
    };
    const form = h(
      "form",
      {
        onsubmit: async (event: Event) => {
          event.preventDefault();
          try {
            setUnlocked(await client.adminUnlock(password.value));
            close(true);
          } catch (e) {
            error.textContent = errorText(e);
          }
        },
      },
      h("h2", {}, "Admin password needed"),
      h("p", {}, "What you asked for needs this instance's admin. Enter the admin password; admin actions then stay unlocked for 5 minutes."),
      field("Admin password", password),
      error,
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => close(false) }, "Cancel"), h("button", { type: "submit", class: "primary" }, "Unlock")),
    );
    dialog.append(form);
    document.body.append(dialog);
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    password.focus();
  });
}

/** Runs an admin action; if the lock is closed, asks for the password and
 * tries again. */
export async function asAdmin<T>(action: () => Promise<T>, client: Api = api): Promise<T> {
  try {
    return await action();
  } catch (e) {
    if (isApiError(e) && e.code === "admin_locked") {
      await askAdminPassword(client);
      return action();
    }
    throw e;
  }
}

/** The visible lock state in the header. */
export function AdminLockIndicator(client: Api = api): HTMLElement {
  const label = h("span", {});
  const button = h("button", { type: "button", class: "link" });
  const render = () => {
    const left = adminRemaining();
    if (left > 0) {
      const minutes = Math.floor(left / 60000);
      const seconds = Math.floor((left % 60000) / 1000);
      label.textContent = `Admin unlocked (${minutes}:${String(seconds).padStart(2, "0")})`;
      button.textContent = "Lock";
      button.setAttribute("aria-label", "Lock admin actions");
      button.onclick = () => void lockAdmin(client);
    } else {
      label.textContent = "Admin locked";
      button.textContent = "Unlock";
      button.setAttribute("aria-label", "Unlock admin actions");
      button.onclick = () => void askAdminPassword(client).catch(() => undefined);
    }
  };
  const root = h("div", { class: "admin-lock" }, label, " ", button);
  // The header is drawn again on every tab switch: an indicator that left
  // the page (it is on the page from the start) stops its clock and its
  // listener.
  const tick = () => {
    if (!root.isConnected) {
      clearInterval(timer);
      offAdminChange(render);
      return;
    }
    render();
  };
  const timer = setInterval(tick, 1000);
  onAdminChange(render);
  render();
  return root;
}

/** Sets the lock from the app's own record (e.g. right after first run). */
export function syncAdminRemaining(remainingMs: number): void {
  setUnlocked(remainingMs);
}
