import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import type { Api } from "../api";
import type { Status, StoredInvite } from "../types";
import { describeInvite, NetworkView } from "../views/network";
import { inviteMessage } from "../components/inviteSheet";

const status = {
  peer_id: "p",
  name: "laptop",
  network_id: "n1",
  network_name: "Elm Street Library",
  state: "forming",
  members: 1,
  min_members: 3,
  op_count: 1,
  code_hash: "c1",
  build: { code_hash: "c1", label: null, description: "DAN 0.1.0 · desktop · Linux x86-64", approval: "approved", approval_ends_ms: null },
  online_peers: 0,
  join: null,
  deprecation: null,
  damaged_records: [],
} as unknown as Status;

const invite: StoredInvite = {
  id: "0123456789abcdef",
  link: "dan://join/ABCDEF",
  created_ms: 1,
  expires_ms: Date.parse("2030-01-02T10:00:00Z"),
  uses: 1,
  used: 0,
  revoked: false,
  label: "for Bob",
  used_by: [],
  status: "waiting",
};

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("invite sheet", () => {
  it("stays open with the link, QR code and expiry after the view behind it is redrawn", async () => {
    const createInvite = vi.fn(async () => ({ invite, qr_svg: "<svg></svg>" }));
    const invites = vi.fn(async () => [invite]);
    const client = { createInvite, invites } as unknown as Api;
    const root = document.createElement("main");
    document.body.replaceChildren(root);
    root.append(NetworkView(status, () => undefined, client));
    (root.querySelector('[aria-label="For whom"]') as HTMLInputElement).value = "for Bob";
    const create = Array.from(root.querySelectorAll("button")).find((b) => b.textContent === "Create invite link")!;
    create.click();
    await flush();
    expect(createInvite).toHaveBeenCalledWith(1, 86400, "for Bob");
    // The whole app redraws (a join request, a vote): the sheet must stay.
    root.replaceChildren(NetworkView(status, () => undefined, client));
    const sheet = document.querySelector('dialog[aria-label="Invite ready"]')!;
    expect(sheet).not.toBeNull();
    expect((sheet.querySelector('[aria-label="Invite link"]') as HTMLTextAreaElement).value).toBe(invite.link);
    expect(sheet.querySelector('img[alt="QR code of the invite link"]')).not.toBeNull();
    expect(sheet.querySelector('[aria-label="Invite expiry"]')!.textContent).toMatch(/one instance can join/);
    expect(sheet.textContent).toMatch(/for Bob/);
    Array.from(sheet.querySelectorAll("button")).find((b) => b.textContent === "Done")!.click();
    expect(document.querySelector('dialog[aria-label="Invite ready"]')).toBeNull();
  });

  it("lists every invite with its link and status", async () => {
    const used = { ...invite, id: "ff00", label: "", used: 1, status: "used_up" as const, used_by: [{ peer_id: "p2", instance_name: "Bob's laptop", admin_name: "Bob", used_ms: 5 }] };
    const client = { invites: vi.fn(async () => [invite, used, { ...invite, id: "aa", label: "old", status: "unreachable" as const }]) } as unknown as Api;
    const view = NetworkView(status, () => undefined, client);
    await flush();
    const list = view.querySelector('[aria-label="Invites issued here"]')!;
    expect(list.querySelector('[aria-label="for Bob link"]')!.textContent).toBe(invite.link);
    expect(list.querySelector('[aria-label="for Bob status"]')!.textContent).toMatch(/^Waiting to be used \(0 of 1 used\)/);
    expect(list.querySelector('[aria-label="Invite ff00 status"]')!.textContent).toMatch(/^Used by Bob's laptop \(Bob, id …p2\)/);
    expect(list.querySelector('[aria-label="old status"]')!.textContent).toMatch(/Not reachable now/);
    expect(list.querySelector('[aria-label="Revoke invite Invite ff00"]')).toBeNull();
    expect(list.querySelector('[aria-label="Revoke invite for Bob"]')).not.toBeNull();
  });

  it("words each status and the message to send", () => {
    expect(describeInvite({ ...invite, status: "expired" })).toMatch(/^Expired on/);
    expect(describeInvite({ ...invite, status: "revoked" })).toMatch(/^Revoked/);
    const message = inviteMessage("Elm Street Library", invite);
    expect(message).toMatch(/“Elm Street Library”/);
    expect(message).toMatch(/choose “Join network” and paste this link/);
    expect(message).toContain(invite.link);
  });
});
