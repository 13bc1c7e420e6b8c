// Closing the window: DAN keeps the instance running in the background so
// the other members can reach it. The first time it asks, and it can
// remember the answer.

import { api, type Api } from "../api";
import { h } from "../dom";
import { toast } from "./toasts";
import { errorText } from "./errorText";

/** Where the answer "don't ask again" is kept. */
export const CLOSE_CHOICE_KEY = "dan.onClose";

type Choice = "background" | "quit";

async function act(choice: Choice, client: Api): Promise<void> {
  try {
    if (choice === "quit") await client.quitApp();
    else await client.hideWindow();
  } catch (e) {
    toast(errorText(e), "error");
  }
}

/** Answers a request to close the window: as remembered, or by asking. */
export function onCloseRequested(client: Api = api, storage: Storage = localStorage): void {
  const remembered = storage.getItem(CLOSE_CHOICE_KEY);
  if (remembered === "background" || remembered === "quit") {
    void act(remembered, client);
    return;
  }
  if (document.querySelector("dialog.close-dialog")) return;
  const remember = h("input", { type: "checkbox", "aria-label": "Do not ask again" });
  const dialog = h("dialog", { class: "admin-dialog close-dialog", "aria-label": "Keep DAN running?" });
  const choose = (choice: Choice) => {
    if (remember.checked) storage.setItem(CLOSE_CHOICE_KEY, choice);
    dialog.close();
    dialog.remove();
    void act(choice, client);
  };
  dialog.append(
    h("h2", {}, "Keep DAN running?"),
    h("p", {}, "While DAN runs, the other admins' instances can reach this one and changes flow both ways. Closed, it keeps running in the background; open DAN again to see this window. Quit stops it until you open DAN again."),
    h("label", { class: "toggle" }, remember, " Do not ask again"),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => choose("quit") }, "Quit DAN"),
      h("button", { type: "button", class: "primary", onclick: () => choose("background") }, "Keep running in the background"),
    ),
  );
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    choose("background");
  });
  document.body.append(dialog);
  dialog.showModal();
}
