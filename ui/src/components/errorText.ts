// Errors in words a person can act on: one sentence and a next step for
// every error code, instead of the instance's technical message.

import { isApiError, type ApiError } from "../api";

const SENTENCES: Partial<Record<ApiError["code"], string>> = {
  wrong_password: "That is not this instance's admin password. Check Caps Lock and try again; after several wrong tries DAN waits a little longer each time.",
  weak_password: "Choose a longer admin password: at least 10 characters, best a few words.",
  password_needed: "This needs the admin password.",
  admin_locked: "This needs the admin password.",
  not_ready: "DAN is still starting. Try again in a moment.",
  not_running: "The instance is not running. Start DAN and try again.",
  stopped: "DAN is stopping, or needs to be started again. Open DAN again and retry.",
  busy: "DAN is already open on this computer (another window or `dan run`). Close it, or use that one.",
  no_network: "This instance is not part of a network yet: create one, or join one with an invite link.",
  not_member: "The members have not approved this instance yet. Ask them to approve it (they compare your join code).",
  catching_up: "DAN is getting this instance's own earlier changes back from the network. Try again in a moment.",
  storage: "DAN could not read or write its data. Check that the disk is not full, then try again; if it keeps happening, restore a backup (Settings).",
  io: "DAN could not read or write a file. Check the disk and the file's place, then try again.",
  integrity: "The stored records differ from the signed history (something changed them behind DAN's back). Settings → Repair rebuilds them from the history.",
};

/** What to show a person for a failed command. Codes whose message is
 * already a sentence for people (invalid input, a refused rule, the
 * network's answer) keep it, with raw network errors put in words. */
export function errorText(error: unknown): string {
  if (!isApiError(error)) return error instanceof Error ? error.message : String(error);
  const sentence = SENTENCES[error.code];
  if (sentence) return sentence;
  const unreachable = /could not reach the inviter (.+?) at .*/.exec(error.message);
  if (unreachable) return `${unreachable[1]}'s computer cannot be reached right now. DAN must be open on it and online; try again in a few minutes, or ask them for a new invite link.`;
  if (error.kind === "network" || /Failed to dial|Connection refused|timed out/i.test(error.message)) return "The other computer cannot be reached right now. DAN must be open on it and online; try again in a few minutes.";
  return error.message;
}
