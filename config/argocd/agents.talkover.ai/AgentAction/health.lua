-- Argo CD health check for AgentAction (agents.talkover.ai/v1alpha1).
--
-- Argo CD gives health scripts only the base, table and package libraries:
-- this script uses no string.* function and no require, only comparisons
-- and the .. operator.
--
--   agents.talkover.ai/paused: "true"    -> Suspended (Argo CD's status for paused
--                                           resources), with Ready's message once
--                                           the operator has written it
--   being deleted                        -> Progressing "Deleting"
--   no status, or generation unobserved  -> Progressing "Waiting for the operator..."
--   Stalled=True                         -> Degraded, with its message
--   Ready=True                           -> Healthy, with its message
--   anything else                        -> Progressing, with Ready's (or Reconciling's) message
local hs = {}

local function condition(conditions, condType)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == condType then
      return c
    end
  end
  return nil
end

-- field returns c[name] when c is a condition with a non-empty value there.
local function field(c, name)
  if c == nil or c[name] == nil or c[name] == "" then
    return nil
  end
  return c[name]
end

-- describe returns the condition's message, or its reason when it has no
-- message.
local function describe(c)
  return field(c, "message") or field(c, "reason")
end

local function result(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local metadata = obj.metadata or {}
local status = obj.status

-- The operator makes no call at all for a paused AgentAction, not even the
-- delete that releases its finalizer, so paused wins over deleting.
local annotations = metadata.annotations or {}
if annotations["agents.talkover.ai/paused"] == "true" then
  local pausedReady = nil
  if status ~= nil then
    pausedReady = condition(status.conditions, "Ready")
  end
  if pausedReady ~= nil and pausedReady.reason == "Paused" then
    return result("Suspended", describe(pausedReady))
  end
  if metadata.deletionTimestamp ~= nil then
    return result("Suspended", "Deletion waits: the agents.talkover.ai/paused annotation is \"true\"")
  end
  return result("Suspended", "Paused by the agents.talkover.ai/paused annotation")
end

if metadata.deletionTimestamp ~= nil then
  return result("Progressing", "Deleting")
end

if status == nil or status.observedGeneration == nil then
  return result("Progressing", "Waiting for the operator")
end
if metadata.generation ~= nil and status.observedGeneration ~= metadata.generation then
  return result("Progressing", "Waiting for the operator to observe generation " .. metadata.generation
    .. " (observed " .. status.observedGeneration .. ")")
end

local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  return result("Degraded", describe(stalled) or "Stalled")
end

local ready = condition(status.conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  return result("Healthy", describe(ready) or "Ready")
end

local reconciling = condition(status.conditions, "Reconciling")
if reconciling ~= nil and reconciling.status ~= "True" then
  reconciling = nil
end
local message = field(ready, "message") or field(reconciling, "message")
  or field(ready, "reason") or field(reconciling, "reason")
return result("Progressing", message or "Waiting for the AgentAction to become ready")
