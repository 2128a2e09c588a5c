/**
 * The buyer's progress page: static files from `server/ui/`, and every address under `/ui/cases` answered with
 * the page itself (the page reads the case id from its own address and the token from session storage). An
 * address that cannot name a case (`/ui/cases/abc`, `/ui/cases/`) gets the same page with status 404: the
 * page then says there is no such case, as it does for an unknown one.
 *
 * Mounted before the rate limit (server/app.ts): one page load is a dozen files, and an office behind one
 * address reloads it all day. The files carry ETag and Last-Modified with `Cache-Control: no-cache`: a
 * release may change them at any time, so the browser asks each time, and a reload costs a round of 304s.
 */
import { join } from "node:path";
import express, { type Router } from "express";

const UI_DIR = join(__dirname, "..", "ui");

/** A case id as the API takes it (server/schemas.ts `CaseId`), optionally followed by one slash. */
const CASE_PATH = /^\/ui\/cases\/\d{1,78}\/?$/;

export function uiRoutes(): Router {
  const router = express.Router();
  const files = express.static(UI_DIR, {
    index: false,
    redirect: false,
    cacheControl: false,
    setHeaders: (res) => res.setHeader("Cache-Control", "no-cache"),
  });
  router.get("/ui/cases{/*rest}", (req, res, next) => {
    if (!CASE_PATH.test(req.path)) res.status(404);
    // The page itself, through the same static handler as its files: the same ETag, Last-Modified and 304s
    // (res.sendFile would follow the app's "etag" setting, which is off for the API's answers).
    req.url = "/index.html";
    files(req, res, next);
  });
  // Fall through on anything not a file here (another method, a missing file, a path out of the folder): the
  // API's own 404 answers it in the error shape (with fallthrough off, serve-static answers a bare 405 or 403).
  router.use("/ui/assets", files);
  return router;
}
