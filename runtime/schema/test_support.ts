/** For the schema's tests: issues of a project changed from a base, and the one issue a change must produce. */
import assert from "node:assert/strict";
import { formatIssue } from "./load.ts";
import { parseProjectConfig } from "./parse.ts";
import type { ConfigIssue } from "./types.ts";

export function issueChecks(base: Record<string, string>) {
  const issuesOf = (files: Record<string, string>): ConfigIssue[] => parseProjectConfig({ ...base, ...files }).issues;
  /** The single issue a change produces, checked for file, line and message. */
  const expectIssue = (files: Record<string, string>, file: string, line: number | undefined, message: RegExp) => {
    const issues = issuesOf(files);
    assert.equal(issues.length, 1, `expected one issue, got:\n${issues.map(formatIssue).join("\n")}`);
    assert.equal(issues[0].file, file);
    assert.equal(issues[0].line, line, formatIssue(issues[0]));
    assert.match(issues[0].message, message);
  };
  return { issuesOf, expectIssue };
}
