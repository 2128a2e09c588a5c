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
  router.use("/ui/assets", express.static(UI_DIR, { index: false, fallthrough: false }));
  return router;
}
