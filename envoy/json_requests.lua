-- JSON request bodies, checked before the transcoder sees them.
--
-- Inlined into envoy.yaml by meshctl.envoy_config. The transcoder's JSON parser is lenient: it
-- takes single-quoted strings, unquoted keys, trailing commas and raw control characters, and it
-- transcodes a body whatever its content type (a text/plain form post included). It also passes
-- every header on as gRPC metadata, where a name outside [0-9a-z_.-] makes the service's gRPC
-- stack fail the call (500). Web clients get the JSON the API documents instead:
--   * headers whose names gRPC metadata cannot carry are dropped (no service reads them);
--   * a body sent as anything but application/json: 415;
--   * a body that is not a strict JSON (RFC 8259) object or array, or is nested deeper than
--     MAX_DEPTH: 400;
--   * a body over the connection's buffer limit: 413 (Envoy's own reply, when body() overflows).
-- Both errors are in Spotify's shape. Native gRPC (application/grpc*), reads without a body and
-- preflights pass untouched, so uploads over gRPC are never buffered here.

local MAX_DEPTH = 64
local JSON_TYPE = "application/json"

local parse_value

local function skip_space(text, i)
  return text:find("[^ \t\r\n]", i) or (#text + 1)
end

-- Each parser takes the index of the value's first byte and returns the index after it, or nil.
local function parse_string(text, i)
  i = i + 1
  while true do
    local j = text:find('["\\%z\1-\31]', i)
    if j == nil then
      return nil
    end
    local c = text:byte(j)
    if c == 34 then
      return j + 1
    end
    if c ~= 92 then
      return nil -- a raw control character
    end
    local escape = text:sub(j + 1, j + 1)
    if escape == "u" then
      if not text:find("^%x%x%x%x", j + 2) then
        return nil
      end
      i = j + 6
    elseif escape ~= "" and ('"\\/bfnrt'):find(escape, 1, true) then
      i = j + 2
    else
      return nil
    end
  end
end

local function parse_digits(text, i)
  local _, last = text:find("^%d+", i)
  return last and last + 1
end

local function parse_number(text, i)
  if text:byte(i) == 45 then -- "-"
    i = i + 1
  end
  local c = text:byte(i)
  if c == 48 then -- a leading 0 stands alone
    i = i + 1
  elseif c and c >= 49 and c <= 57 then
    i = parse_digits(text, i)
  else
    return nil
  end
  if text:byte(i) == 46 then -- "."
    i = parse_digits(text, i + 1)
    if i == nil then
      return nil
    end
  end
  c = text:byte(i)
  if c == 101 or c == 69 then -- "e" / "E"
    i = i + 1
    c = text:byte(i)
    if c == 43 or c == 45 then
      i = i + 1
    end
    i = parse_digits(text, i)
  end
  return i
end

local function parse_container(text, i, depth, close, member)
  if depth > MAX_DEPTH then
    return nil
  end
  i = skip_space(text, i + 1)
  if text:byte(i) == close then
    return i + 1
  end
  while true do
    i = member(text, i, depth)
    if i == nil then
      return nil
    end
    i = skip_space(text, i)
    local c = text:byte(i)
    if c == close then
      return i + 1
    end
    if c ~= 44 then -- ","
      return nil
    end
    i = skip_space(text, i + 1)
  end
end

local function parse_member(text, i, depth)
  if text:byte(i) ~= 34 then
    return nil -- keys are double-quoted strings
  end
  i = parse_string(text, i)
  if i == nil then
    return nil
  end
  i = skip_space(text, i)
  if text:byte(i) ~= 58 then -- ":"
    return nil
  end
  return parse_value(text, skip_space(text, i + 1), depth)
end

local function parse_element(text, i, depth)
  return parse_value(text, i, depth)
end

parse_value = function(text, i, depth)
  local c = text:byte(i)
  if c == 123 then
    return parse_container(text, i, depth + 1, 125, parse_member)
  elseif c == 91 then
    return parse_container(text, i, depth + 1, 93, parse_element)
  elseif c == 34 then
    return parse_string(text, i)
  elseif c == 116 and text:sub(i, i + 3) == "true" then
    return i + 4
  elseif c == 102 and text:sub(i, i + 4) == "false" then
    return i + 5
  elseif c == 110 and text:sub(i, i + 3) == "null" then
    return i + 4
  end
  return parse_number(text, i)
end

-- Every body this API takes is an object (or, for a playlist's items, an array). A bare scalar
-- is refused as well: the transcoder's streaming parser never sees a bare number end, and the
-- request would hang until the route's timeout.
local function is_json_document(text)
  local start = skip_space(text, 1)
  local c = text:byte(start)
  if c ~= 123 and c ~= 91 then
    return false
  end
  local i = parse_value(text, start, 0)
  return i ~= nil and skip_space(text, i) == #text + 1
end

local function refuse(handle, status, message)
  handle:respond(
    { [":status"] = tostring(status), ["content-type"] = JSON_TYPE },
    '{"error":{"status":' .. status .. ',"message":"' .. message .. '"}}'
  )
end

local function drop_unforwardable_headers(headers)
  local unforwardable = {}
  for name, _ in pairs(headers) do
    if name:byte(1) ~= 58 and name:find("[^0-9a-z_.-]") then -- 58: ":" (pseudo-headers stay)
      unforwardable[#unforwardable + 1] = name
    end
  end
  for _, name in ipairs(unforwardable) do
    headers:remove(name)
  end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local content_type = (headers:get("content-type") or ""):lower()
  if content_type:find("application/grpc", 1, true) == 1 then
    return
  end
  drop_unforwardable_headers(headers)
  local method = headers:get(":method")
  if method == "GET" or method == "HEAD" or method == "OPTIONS" then
    return
  end
  local media_type = content_type:match("^%s*([^;%s]*)")
  -- No content type: bodiless writes (POST /v1/me/player/next) and clients that omit it.
  if media_type ~= "" and media_type ~= JSON_TYPE then
    refuse(handle, 415, "Unsupported content type: send the body as application/json")
    return
  end
  local body = handle:body()
  if body == nil or body:length() == 0 then
    return
  end
  if not is_json_document(body:getBytes(0, body:length())) then
    refuse(handle, 400, "Malformed JSON body")
  end
end
