/**
 * The buyer's progress page: static files from `server/ui/`, and `/ui/cases/:id` answered with the page
 * itself (the page reads the case id from its own address and the token from session storage).
 */
import { join } from "node:path";
import express, { type Router } from "express";

const UI_DIR = join(__dirname, "..", "ui");

export function uiRoutes(): Router {
  const router = express.Router();
  router.get("/ui/cases/:id", (_req, res) => res.sendFile(join(UI_DIR, "index.html")));
  // Fall through on anything not a file here (another method, a missing file, a path out of the folder): the
  // API's own 404 answers it in the error shape (with fallthrough off, serve-static answers a bare 405 or 403).
  router.use("/ui/assets", express.static(UI_DIR, { index: false, redirect: false }));
  return router;
}
