import { defineConfig } from 'drizzle-kit';

// `npm run migrate:generate` turns changes in db/schema.ts into a new SQL file under db/migrations.
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema.ts',
  out: './db/migrations',
});
