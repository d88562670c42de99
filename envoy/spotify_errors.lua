-- Spotify's error object for JSON clients: {"error":{"status":N,"message":"..."}}.
--
-- Inlined into envoy.yaml by meshctl.envoy_config. Rewrites every error response a JSON client
-- gets, whoever produced it:
--   * a service's gRPC status, which the transcoder turned into {"code":N,"message":...,
--     "details":[]} (the HTTP status is re-derived from the gRPC code, so that
--     FAILED_PRECONDITION is 409 Conflict as docs/architecture.md decides; Envoy's own table says 400);
--   * Envoy's local replies (503 no healthy upstream, 504 timeout...),
--     whose bodies are plain text or empty.
-- Bodies already in Spotify's shape (ext_authz denials, the 404 route, media_svc) pass unchanged.
-- Native gRPC responses (content-type application/grpc) are never touched: gRPC clients keep
-- their status codes. Successful responses are not buffered; only errors are.

local HTTP_OF_GRPC = {
  [1] = 499, [2] = 500, [3] = 400, [4] = 504, [5] = 404, [6] = 409, [7] = 403, [8] = 429,
  [9] = 409, [10] = 409, [11] = 400, [12] = 501, [13] = 500, [14] = 503, [15] = 500, [16] = 401,
}

local DEFAULT_MESSAGE = {
  [400] = "Bad request", [401] = "No token provided", [403] = "Forbidden", [404] = "Not found",
  [405] = "Method not allowed", [409] = "Conflict", [413] = "Request entity too large",
  [429] = "API rate limit exceeded", [499] = "Request cancelled", [500] = "Internal server error",
  [501] = "Not implemented", [502] = "Bad gateway", [503] = "Service unavailable",
  [504] = "Gateway timeout",
}

local function json_escape(text)
  return (text:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == '\\' then return '\\\\' end
    if c == '\n' then return '\\n' end
    return string.format('\\u%04x', string.byte(c))
  end))
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local status = tonumber(headers:get(":status")) or 0
  if status < 400 then
    return
  end
  local content_type = headers:get("content-type") or ""
  if content_type:find("application/grpc", 1, true) == 1 then
    return
  end
  local body = handle:body(true)
  local text = body:getBytes(0, body:length())
  if text:find('^%s*{%s*"error"%s*:%s*{') then
    return
  end
  local message = nil
  local code = text:match('^{"code":(%d+),')
  if code then
    status = HTTP_OF_GRPC[tonumber(code)] or status
    -- The transcoder's message is already JSON-escaped: keep it verbatim.
    message = text:match('"message":"(.-)","details":')
  end
  if message == nil or message == "" then
    local plain = text:gsub("^%s+", ""):gsub("%s+$", "")
    -- Envoy's own 5xx texts ("upstream connect error or disconnect/reset before headers...")
    -- describe its internals, not anything the client can act on.
    if plain == "" or (code == nil and status >= 500) then
      plain = DEFAULT_MESSAGE[status] or "Error"
    end
    message = json_escape(plain)
  end
  -- body() yielded: the header handle from before it is stale, so ask for it again.
  headers = handle:headers()
  headers:replace(":status", tostring(status))
  headers:replace("content-type", "application/json")
  body:setBytes('{"error":{"status":' .. status .. ',"message":"' .. message .. '"}}')
end
