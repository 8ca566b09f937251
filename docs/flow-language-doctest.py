#!/usr/bin/env python3
"""Doc test for docs/flow-language.md."""
import os, re, subprocess, sys, tempfile

# Runs every tagged example and command of docs/flow-language.md:
#   <!-- test: sh -->            the block is run with bash (-e -o pipefail) from the repository root
#   <!-- test: dsl|yaml -->       a whole flow file: must check with 0 errors and 0 warnings
#   <!-- test: dsl-steps|yaml-steps|dsl-item|dsl-decl|yaml-decl -->  a fragment, checked inside a small template flow
#   <!-- test: dsl-canonical|yaml-canonical -->  a whole flow that must also be in canonical layout and convert
#                                                 exactly into the other block of the pair
# Every flow is also converted to the other syntax and must give the same IR; a yaml block that follows a dsl
# block of the same kind must give the same IR as it.
# Usage (from the repository root): python3 docs/flow-language-doctest.py docs/flow-language.md
ROOT=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
G=os.path.join(ROOT,'target/debug/govflow')
doc=open(sys.argv[1]).read()
blocks=re.findall(r'<!-- test: ([\w-]+) -->\n```(\w+)\n(.*?)```', doc, re.S)
DSL_T='''flow t "模板" {
ITEM
DECL
STEPS
}
'''
ITEM='''  item {
    basic_code "0100001000"
    type 行政许可
    statutory 20 workdays
    kind promised
    promised 15 workdays
    mode window
  }'''
DECL='''  departments {
    window "窗口" { roles { clerk "综合窗口" } }
    dev "发改" { roles { chief "领导" } }
    env "环保"
    planning "规划"
  }
  materials {
    application "申请表"
  }'''
START='  task start "开始" by window starts_clock'
YAML_T='''flow: t
name: 模板
item:
  basic_code: "0100001000"
  type: 行政许可
  statutory: 20 workdays
  kind: promised
  promised: 15 workdays
  mode: window
departments:
  window:
    name: 窗口
    roles:
      clerk: 综合窗口
  dev:
    name: 发改
    roles:
      chief: 领导
  env: 环保
  planning: 规划
materials:
  application: 申请表
steps:
  - task: start
    name: 开始
    by: window
    starts_clock: true
STEPS
  - end: granted
    name: 准予许可
'''
def ind(s,n): return '\n'.join((' '*n+l if l.strip() else l) for l in s.rstrip('\n').split('\n'))
def run(args): return subprocess.run(args,capture_output=True,text=True,cwd=ROOT,executable='/bin/bash' if args[0]=='bash' else None)
fails=0
irs={}
d=tempfile.mkdtemp(prefix='govflow-doctest-')
for i,(kind,lang,body) in enumerate(blocks):
    if kind=='sh':
        r=subprocess.run(['bash','-e','-o','pipefail','-c',body],capture_output=True,text=True,cwd=ROOT)
        ok=r.returncode==0
        print(f'[{i}] sh rc={r.returncode}', 'OK' if ok else 'FAIL\n'+r.stdout[-500:]+r.stderr[-1500:]); fails+=not ok; continue
    if kind in ('dsl','dsl-canonical'): text,ext=body,'.flow'
    elif kind in ('yaml','yaml-canonical'): text,ext=body,'.flow.yaml'
    elif kind=='dsl-item': text,ext=DSL_T.replace('ITEM',ind(body,2)).replace('DECL',DECL).replace('STEPS',START+'\n  end granted "准予许可"'),'.flow'
    elif kind=='dsl-decl':
        decl=DECL
        if body.startswith('departments'): decl=ind(body,2)+'\n  materials { application "申请表" }'
        else: decl=DECL.split('  materials')[0]+ind(body,2)
        text,ext=DSL_T.replace('ITEM',ITEM).replace('DECL',decl).replace('STEPS',START+'\n  end granted "准予许可"'),'.flow'
    elif kind=='yaml-decl':
        t=YAML_T.replace('STEPS','')
        key=body.split(':')[0]
        # replace that section
        t=re.sub(r'^'+key+r':\n(  .*\n)+', body if body.endswith('\n') else body+'\n', t, flags=re.M)
        text,ext=t,'.flow.yaml'
    elif kind=='dsl-steps':
        text,ext=DSL_T.replace('ITEM',ITEM).replace('DECL',DECL).replace('STEPS',START+'\n'+ind(body,2)+'\n  end granted "准予许可"'),'.flow'
    elif kind=='yaml-steps':
        text,ext=YAML_T.replace('STEPS',ind(body,2)),'.flow.yaml'
    else: print('unknown',kind); fails+=1; continue
    p=os.path.join(d,f'b{i}{ext}'); open(p,'w').write(text)
    r=run([G,'check',p]); ok=r.returncode==0 and '0 warnings' in r.stderr
    # round trip: convert and compare IR
    other='yaml' if ext=='.flow' else 'dsl'
    conv=run([G,'fmt','--to',other,p]); q=os.path.join(d,f'b{i}_conv'+('.flow.yaml' if other=='yaml' else '.flow')); open(q,'w').write(conv.stdout)
    ir1=run([G,'ir',p]).stdout; ir2=run([G,'ir',q]).stdout
    same= ir1==ir2 and ir1!=''
    irs[i]=ir1
    if kind.startswith('yaml') and i-1 in irs and blocks[i-1][0]==kind.replace('yaml','dsl'):
        pair = irs[i-1]==ir1
        print(f'   pair with [{i-1}]:', 'IDENTICAL IR' if pair else 'DIFFERENT IR'); fails+= not pair
    if kind.endswith('-canonical'):
        exact = conv.stdout == (blocks[i-1][2] if kind.startswith('yaml') else blocks[i+1][2])
        canon = run([G,'fmt','--check',p]).returncode==0
        print(f'   canonical={canon} converts-exactly={exact}'); fails += (not exact) or (not canon)
    print(f'[{i}] {kind} check={"OK" if ok else "FAIL"} ir_roundtrip={"same" if same else "DIFF"}')
    if not ok: print(r.stderr[-2500:]); print(text)
    fails+= (not ok) or (not same)
print('blocks',len(blocks),'fails',fails, 'tmp',d)
sys.exit(1 if fails else 0)
