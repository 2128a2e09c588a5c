/**
 * The desk (`/ui/`, the principal's cases) and the buyer's progress page: static files from `server/ui/`, and
 * every address under `/ui/cases` answered with
 * the page itself (the page reads the case id from its own address and the token from session storage). An
 * address that cannot name a case (`/ui/cases/abc`, `/ui/cases/`) gets the same page as an unknown case
 * does, and the page says there is no such case; never the API's JSON. (200, as for an unknown case: only an
 * API answer carries a 4xx, always in the error shape.)
 *
 * Mounted before the rate limit (server/app.ts): one page load is a dozen files, and an office behind one
 * address reloads it all day. The files carry ETag and Last-Modified with `Cache-Control: no-cache`: a
 * release may change them at any time, so the browser asks each time, and a reload costs a round of 304s.
 */
import { join } from "node:path";
import express, { type RequestHandler, type Router } from "express";

const UI_DIR = join(__dirname, "..", "ui");

export function uiRoutes(): Router {
  const router = express.Router();
  const files = express.static(UI_DIR, {
    index: false,
    redirect: false,
    cacheControl: false,
    setHeaders: (res) => res.setHeader("Cache-Control", "no-cache"),
  });
  const page: RequestHandler = (req, res, next) => {
    // The page itself, through the same static handler as its files: the same ETag, Last-Modified and 304s
    // (res.sendFile would follow the app's "etag" setting, which is off for the API's answers).
    req.url = "/index.html";
    files(req, res, next);
  };
  router.get("/ui/cases/:id", page);
  // The desk: the principal's cases (desk.html), at /ui/ and /ui.
  const desk: RequestHandler = (req, res, next) => {
    req.url = "/desk.html";
    files(req, res, next);
  };
  router.get("/ui", desk);
  router.get("/ui/", desk);
  // The addresses that name no case: /ui/cases, /ui/cases/, /ui/cases/1/2.
  router.use("/ui/cases", (req, res, next) =>
    req.method === "GET" || req.method === "HEAD" ? page(req, res, next) : next(),
  );
  // Fall through on anything not a file here (another method, a missing file, a path out of the folder): the
  // API's own 404 answers it in the error shape (with fallthrough off, serve-static answers a bare 405 or 403).
  router.use("/ui/assets", files);
  return router;
}
