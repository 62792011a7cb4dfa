/** tau's own function fields for cron triggers and project secrets (the schedule's parser is runtime/cron). */
import { type Field, list, pathText, text } from "../fields.ts";
import { parseSchedule } from "../../cron/cron.ts";

/** A project secret's name (services/secrets): an environment variable's shape, so WAGI guests read it by getenv. */
export const SECRET_NAME_RE = /^[A-Z_][A-Z0-9_]*$/;

export const scheduleField: Field<string> = text(
  "cron (tau's own): five UTC fields (minute hour day-of-month month day-of-week) or @every 30s, @hourly.",
  "",
  (v) => {
    try {
      parseSchedule(v);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  },
);

export const secretsField: Field<string[]> = list(
  "Project secrets it may read (tau's own field; set with tau secret set): NAME, as [A-Z_][A-Z0-9_]*.",
  {
    unique: true,
    item: (v, path, ctx) => {
      if (SECRET_NAME_RE.test(v)) return v;
      ctx.issue(
        path,
        `${pathText(path)} '${v}' is not a secret name: use upper case, digits and _ (e.g. API_KEY)`,
      );
      return undefined;
    },
  },
);
