// Asking "are you sure?" inside the window, in the app's own words and
// style (the browser's confirm() shows a bare system box that names the
// web view, not DAN, and cannot be styled or read by assistive tools).

import { h } from "../dom";

/** What the question says. */
export interface Question {
  /** The dialog's title, also its accessible name. */
  title: string;
  /** What happens, in a sentence or two. */
  text: string;
  /** The button that goes ahead, e.g. "Restore backup". */
  confirm: string;
}

/** Asks `question` in a modal dialog; resolves true when the person goes
 * ahead, false on Cancel or Escape. */
export function confirmDialog(question: Question): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "admin-dialog confirm-dialog", "aria-label": question.title });
    const answer = (yes: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(yes);
    };
    dialog.append(
      h("h2", {}, question.title),
      h("p", {}, question.text),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: () => answer(false) }, "Cancel"),
        h("button", { type: "button", class: "danger", onclick: () => answer(true) }, question.confirm),
      ),
    );
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      answer(false);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
