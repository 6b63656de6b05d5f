-- The mixed traffic of scripts/soak.sh: reads, mutations, uploads, a guarded upload with a
-- bearer token, pages and bad requests, drawn at random per request. Counts answers by class.

local token = os.getenv("SOAK_TOKEN") or ""
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local function json_call(body, headers)
    headers = headers or {}
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/api/mizan/call/", headers, body)
end

local function multipart(envelope, size, headers)
    local boundary = "SOAKBOUNDARY"
    local file = string.rep("x", size)
    local body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"__mizan\"\r\n\r\n"
        .. envelope .. "\r\n--" .. boundary
        .. "\r\nContent-Disposition: form-data; name=\"a\"; filename=\"soak.bin\"\r\n\r\n"
        .. file .. "\r\n--" .. boundary .. "--\r\n"
    headers = headers or {}
    headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
    return wrk.format("POST", "/api/mizan/call/", headers, body)
end

local requests = {
    -- reads (most of the traffic)
    function() return wrk.format("GET", "/api/mizan/ctx/user/?user_id=" .. math.random(1, 3)) end,
    function() return wrk.format("GET", "/api/mizan/ctx/user/?user_id=" .. math.random(1, 3)) end,
    function() return wrk.format("GET", "/api/mizan/ctx/catalog/") end,
    function() return wrk.format("GET", "/api/mizan/ctx/global/") end,
    function() return wrk.format("GET", "/profile/" .. math.random(1, 3) .. "/") end,
    -- mutations that overwrite (the data stays the same size)
    function()
        return json_call('{"fn":"update_profile","args":{"user_id":' .. math.random(1, 3)
            .. ',"name":"soak' .. math.random(1, 1000) .. '"}}')
    end,
    function()
        return json_call('{"fn":"update_name","args":{"user_id":' .. math.random(1, 3)
            .. ',"name":"n' .. math.random(1, 1000) .. '"}}')
    end,
    function() return json_call('{"fn":"echo","args":{"message":"soak"}}') end,
    -- uploads
    function()
        return multipart('{"fn":"attach_files","args":{"files":[{"$upload":"a"}]}}', math.random(0, 65536))
    end,
    function()
        return multipart('{"fn":"upload_avatar","args":{"user_id":2,"avatar":{"$upload":"a"}}}',
            math.random(0, 4096), { ["Authorization"] = "Bearer " .. token })
    end,
    -- bad requests: each must be a 4xx
    function() return json_call('{"fn": ') end,
    function() return json_call('{"fn":"nope","args":{}}') end,
    function() return json_call('{"fn":"echo","args":{"message":5}}') end,
    function() return wrk.format("GET", "/api/mizan/call/") end,
    function() return multipart('{"fn":"echo","args":{"message":"x"}}', 10) end,
    function() return wrk.format("POST", "/api/mizan/call/", { ["Content-Type"] = "multipart/form-data" }, "junk") end,
}

request = function()
    return requests[math.random(1, #requests)]()
end

s2, s3, s4, s5, other = 0, 0, 0, 0, 0

response = function(status, headers, body)
    if status >= 500 then s5 = s5 + 1
    elseif status >= 400 then s4 = s4 + 1
    elseif status >= 300 then s3 = s3 + 1
    elseif status >= 200 then s2 = s2 + 1
    else other = other + 1 end
end

done = function(summary, latency, requests)
    local totals = { s2 = 0, s3 = 0, s4 = 0, s5 = 0, other = 0 }
    for _, thread in ipairs(threads) do
        for name, _ in pairs(totals) do
            totals[name] = totals[name] + thread:get(name)
        end
    end
    io.write(string.format("SOAK requests=%d errors_socket=%d 2xx=%d 3xx=%d 4xx=%d 5xx=%d other=%d\n",
        summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout, totals.s2, totals.s3, totals.s4, totals.s5, totals.other))
    io.write(string.format("SOAK p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
