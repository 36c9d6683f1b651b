#!/usr/bin/env pwsh
# Builds the solution in Release and runs the tests (for Windows users; Linux uses the README's dotnet commands).
param([switch]$NoTest, [string]$Filter = "")
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
dotnet build Gpt2Engine.sln -c Release
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
if (-not $NoTest) {
    if ($Filter) { dotnet test Gpt2Engine.sln -c Release --no-build --filter $Filter }
    else { dotnet test Gpt2Engine.sln -c Release --no-build }
    exit $LASTEXITCODE
}
