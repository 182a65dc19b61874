// Filtering and wording of instance rows.
import type { Row } from "../ipc/bindings";

/** Whether `row` matches every word of `query`: name, id, IP, account, region, or `key=value` tags. */
export function matchesRow(row: Row, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const hay = [row.name ?? "", row.id, row.private_ip ?? "", row.account, row.account_alias ?? "", row.region]
    .join(" ")
    .toLowerCase();
  return words.every((word) => {
    const tag = /^tag:([^=]+)=(.*)$/.exec(word);
    if (tag) {
      return Object.entries(row.tags).some(
        ([k, v]) => k.toLowerCase() === tag[1] && (v ?? "").toLowerCase().includes(tag[2]),
      );
    }
    return hay.includes(word);
  });
}

/** Why `row` cannot be reached, in a few words. */
export function reasonOf(row: Row): string {
  const why = row.unreachable;
  if (!why) return "";
  switch (why.code) {
    case "not_running":
      return why.state;
    case "not_managed":
      return "not managed by Systems Manager";
    case "offline":
      return `agent offline (${why.status.replace("_", " ")})`;
    case "ssm_status_unknown":
      return "SSM status unknown";
    case "agent_too_old":
      return `agent ${why.version} too old (needs ${why.needed})`;
    case "outside_tag_rules":
      return "outside your tag rules";
    case "tag_rules_invalid":
      return "tag rules cannot be read";
    case "denied":
      return `denied when last tried (${new Date(why.at * 1000).toLocaleString()})`;
  }
}
