import { describe, expect, it, vi } from "vitest";

const handlers: Array<(event: { payload: unknown }) => void> = [];
vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({
  listen: vi.fn(async (_name: string, handler: (event: { payload: unknown }) => void) => {
    handlers.push(handler);
    return () => undefined;
  }),
}));

import type { Api } from "../api";
import type { Status } from "../types";
import { App } from "../app";

const status = {
  peer_id: "p",
  name: "laptop",
  network_id: "n1",
  network_name: "Elm Street Library",
  state: "active",
  members: 3,
  min_members: 3,
  op_count: 1,
  code_hash: "c1",
  build: { code_hash: "c1", label: null, description: "DAN 0.1.0 · desktop · Linux x86-64", approval: "approved", approval_ends_ms: null },
  online_peers: 2,
  join: null,
  deprecation: null,
  damaged_records: [],
} as unknown as Status;

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

/** An app started on a fake instance with an active network (or at `stage`). */
async function started(stage = "ready"): Promise<{ client: Api; root: HTMLElement }> {
  const client = {
    appInfo: vi.fn(async () => ({ stage, data_dir: "/d", admin_remaining_ms: 0 })),
    status: vi.fn(async () => status),
    members: vi.fn(async () => []),
    proposals: vi.fn(async () => []),
    evidence: vi.fn(async () => []),
    takeLaunchLink: vi.fn(async () => null),
    listRecords: vi.fn(async () => ({ total: 0, records: [] })),
    adminLock: vi.fn(),
    setWindowTitle: vi.fn(async () => undefined),
  } as unknown as Api;
  const root = document.createElement("main");
  document.body.replaceChildren(root);
  await new App(root, client).start();
  await flush();
  return { client, root };
}

describe("the app shell", () => {
  it("keeps a half-typed record when a join request or a vote arrives", async () => {
    const { client, root } = await started();
    expect(client.setWindowTitle).toHaveBeenCalledWith("Elm Street Library — DAN");
    Array.from(root.querySelectorAll("button")).find((b) => b.textContent === "New record")!.click();
    const title = root.querySelector('form[aria-label="New record"] [aria-label="Title"]') as HTMLInputElement;
    title.value = "Half typed";
    for (const handler of handlers) handler({ payload: { kind: "members_changed" } });
    await flush();
    await flush();
    const after = root.querySelector('form[aria-label="New record"] [aria-label="Title"]') as HTMLInputElement | null;
    expect(after).toBe(title);
    expect(after?.value).toBe("Half typed");
  });

  it("keeps the first-run form as it is when an invite link is clicked meanwhile, and takes the link once the instance exists", async () => {
    const { client, root } = await started("first_run");
    const name = root.querySelector('[aria-label="First run"] input') as HTMLInputElement;
    name.value = "Half typed";
    for (const handler of handlers) handler({ payload: { kind: "launch_link" } });
    await flush();
    await flush();
    expect(root.querySelector('[aria-label="First run"] input')).toBe(name);
    expect(name.value).toBe("Half typed");
    expect(client.takeLaunchLink).not.toHaveBeenCalled();
  });

  it("takes a clicked link when the instance became ready behind the unlock form", async () => {
    const { client } = await started("locked");
    (client.appInfo as ReturnType<typeof vi.fn>).mockResolvedValue({ stage: "ready", data_dir: "/d", admin_remaining_ms: 0 });
    for (const handler of handlers) handler({ payload: { kind: "launch_link" } });
    for (let i = 0; i < 5; i++) await flush();
    expect(client.takeLaunchLink).toHaveBeenCalled();
  });

  it("moves between tabs with the arrow keys, one tab stop for all", async () => {
    const { root } = await started();
    const tab = (name: string) => root.querySelector<HTMLElement>(`[role="tab"][data-tab="${name}"]`)!;
    expect(tab("Records").getAttribute("tabindex")).toBe("0");
    expect(tab("Members").getAttribute("tabindex")).toBe("-1");
    tab("Records").dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    await flush();
    expect(tab("Members").getAttribute("aria-selected")).toBe("true");
    expect(document.activeElement).toBe(tab("Members"));
    expect(root.querySelector('[role="tabpanel"]')!.getAttribute("aria-labelledby")).toBe("tab-Members");
    tab("Members").dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowLeft", bubbles: true }));
    await flush();
    expect(tab("Records").getAttribute("aria-selected")).toBe("true");
  });
});
