/**
 * Strict media types: a request that carries a body must send it as `application/json` (a `charset`
 * parameter is fine; a charset other than UTF-8 is refused by the JSON parser, also with 415). Anything else
 * (`text/plain`, which `fetch` sends for a string body; a form; `+json` variants; no Content-Type at all) is
 * refused with 415 naming the type it got, before any route reads it: a body the server did not read must
 * not be taken for an empty one, or a sign-off carrying the party's own signature would be signed with the
 * managed key instead.
 *
 * A request with no body at all (no Transfer-Encoding, and no Content-Length or a Content-Length of 0) is
 * read as `{}` by the routes whose body is optional.
 */
import type { RequestHandler } from "express";
import { ApiError } from "./errors";

export function hasBody(headers: { "transfer-encoding"?: string; "content-length"?: string }): boolean {
  if (headers["transfer-encoding"] !== undefined) return true;
  const length = headers["content-length"];
  return length !== undefined && length.trim() !== "0";
}

export function requireJsonBody(): RequestHandler {
  return (req, _res, next) => {
    if (!hasBody(req.headers)) return next();
    const contentType = req.headers["content-type"];
    if (contentType === undefined || contentType.trim() === "") {
      return next(
        new ApiError(
          415,
          "UNSUPPORTED_MEDIA_TYPE",
          "the request has a body but no Content-Type: send it as application/json",
          { contentType: null, accepted: ["application/json"] },
        ),
      );
    }
    const mediaType = contentType.split(";")[0].trim().toLowerCase();
    if (mediaType !== "application/json") {
      return next(
        new ApiError(
          415,
          "UNSUPPORTED_MEDIA_TYPE",
          `the request body is ${JSON.stringify(mediaType)}: the API reads only application/json (nothing of this body was used)`,
          {
            contentType,
            accepted: ["application/json"],
          },
        ),
      );
    }
    next();
  };
}
